"""The settings each job ran with, kept beside the results so that a changed setting reruns the
job even where Snakemake has no record of the earlier run (a results/ folder copied from another
machine or folder with its modification times, cp -a, rsync -a, tar; a .snakemake folder deleted).

Snakemake reruns a job whose params changed only from its own records in .snakemake/; without
them, results made with other settings were kept as this config's ("Nothing to be done").  A
stamp, results/records/settings/<stage>/<job>.json, is an input of the job: it holds the sha256 of
the job's settings and is rewritten, with a fresh modification time, only when they changed.  A
stamp written for the first time gets the oldest modification time (1970), so it never reruns a
job by itself (Snakemake's records decide, as before).

A run that executes no job (``snakemake -n``, ``--dag``, ``--summary``, ``--report``) writes nothing
under results/: given ``scratch`` (a temporary folder), a stamp that would be written there is
written under ``scratch`` instead, so the dry run still shows what the run would rerun.
:class:`RunStamps` keeps one run's stamps as the rules ask for them (the scratch folder, the input
stamps once per slide, the report's refusal of a changed one)."""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

SETTINGS_STAMP = "results/records/settings/{stage}/{job}.json"
INPUT_STAMP = "results/records/input/{sample}.json"


def settings_digest(settings) -> str:
    """sha256 of ``settings`` as canonical JSON (sorted keys)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def write_stamp(path: str, content: dict, *, times_ns: tuple[int, int] | None = None,
                scratch: str | None = None) -> str:
    """Write the JSON stamp ``content`` to ``path`` whole (a temporary file renamed), with the access
    and modification times ``times_ns`` (None: now); return the path written.  ``scratch`` given
    (a run that executes no job): the stamp goes to the same path under ``scratch`` and ``path`` is
    left as it is."""
    if scratch is not None:
        path = os.path.join(scratch, os.path.relpath(path, os.sep) if os.path.isabs(path) else path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(content, fh, indent=1, sort_keys=True, default=str)
    if times_ns is not None:
        os.utime(tmp, ns=times_ns)
    os.replace(tmp, path)
    return path


def stamp_job(wildcards) -> tuple[str, str | None, str]:
    """(sample, method, job) of a job's settings stamp from its wildcards: the slide (a simulated
    slide's ``name``; 'all' for the steps over every slide, the table's), the method or combination
    (None for a slide's own steps) and the stamp's name, ``<sample>`` or ``<sample>.<method>``."""
    sample = getattr(wildcards, "sample", None) or getattr(wildcards, "name", None) or "all"
    method = getattr(wildcards, "method", None) or getattr(wildcards, "ensemble", None)
    return sample, method, sample if method is None else f"{sample}.{method}"


def settings_stamp(stage: str, job: str, settings, root: str = "", scratch: str | None = None,
                   stale: str | None = None) -> str:
    """Keep the stamp of ``stage``'s job ``job`` (a path under ``root``) holding ``settings``'
    digest; return its path (relative, as the rules name inputs).  Rewritten with a fresh
    modification time only when the digest changed, or where ``stale`` names an input file of the
    job that is gone while its output lists it: then the stamp also says so, with the time, so that
    its content differs from the one the output was made from (Snakemake reruns a job for a newer
    input only where its checksum changed) and the job runs again; a new stamp is dated 1970.
    ``scratch``: see :func:`write_stamp` (the path returned is then the one under ``scratch``)."""
    path = SETTINGS_STAMP.format(stage=stage, job=job)
    full = os.path.join(root, path)
    digest = settings_digest(settings)
    try:
        with open(full) as fh:
            old = json.load(fh).get("settings_sha256")
    except (OSError, ValueError, AttributeError):
        old = None
    if old == digest and not stale:
        return path
    first = old is None and not os.path.exists(full) and not stale
    content = {"settings_sha256": digest, "settings": settings}
    if stale:
        content["made_again"] = {"missing": stale, "time_ns": time.time_ns()}
    written = write_stamp(full if scratch is None else path, content,
                          times_ns=(0, 0) if first else None, scratch=scratch)   # first stamp: no rerun of its own
    return path if scratch is None else written


def report_only(argv) -> bool:
    """Whether the command line ``argv`` draws the report of results already made: ``--report``
    without ``--report-after-run`` (which runs the workflow first)."""
    args = [str(a) for a in argv]
    return (any(a == "--report" or a.startswith("--report=") for a in args)
            and "--report-after-run" not in args)


def command_line_targets(argv) -> list[str]:
    """The targets the Snakemake command line ``argv`` asks for (read by Snakemake's own parser: at
    parse time Snakemake holds them nowhere yet); [] where it names no file under results/ or is no
    Snakemake command line (the workflow run through Snakemake's API)."""
    args = [str(a) for a in argv]
    if not args or "snakemake" not in os.path.basename(os.path.dirname(args[0]) if args[0].endswith(
            "__main__.py") else args[0]) or not any("results" in a for a in args[1:]):
        return []
    try:
        from snakemake.cli import get_argument_parser
        return [str(t) for t in get_argument_parser().parse_known_args(args[1:])[0].targets]
    except (Exception, SystemExit):      # another Snakemake's parser: no check, Snakemake's own line
        return []


def report_before_run(table: str = "results/table.tsv", runs=()) -> str | None:
    """The line that stops ``snakemake --report`` where no run has made the results table yet, or
    where a file of a run the report draws (``runs``: each run's map, results/<sample>/<method>/
    seed<seed>/domains.png, and each consensus's and combination's) is missing, its folder deleted after the run (Snakemake said only 'File
    ... marked for report but does not exist'); None where they all exist."""
    if os.path.exists(table):
        missing = [path for path in runs if not os.path.exists(path)]
        if not missing:
            return None
        folders = list(dict.fromkeys(os.path.dirname(path) for path in missing))
        more = f" and {len(folders) - 1} other run folder(s)" if len(folders) > 1 else ""
        return (f"snakemake --report draws the report of a finished run, but {missing[0]} does not exist: the "
                f"files of run {folders[0]}{more} are missing (deleted after the run, or runs this config adds). No report was written. "
                "Fix: run the workflow first (snakemake --cores all, with the same --configfile / --config), "
                "which makes them again, then snakemake --report report.html")
    return (f"snakemake --report draws the report of a finished run, but {table} does not exist yet: no run "
            f"has finished in this folder ({os.getcwd()}). Fix: run the workflow first (snakemake --cores all, "
            "with the same --configfile / --config), then snakemake --report report.html; or both at once: "
            "snakemake --cores all --report report.html --report-after-run")


def config_named(configfiles, config_args=None) -> str:
    """The config a Snakemake run reads, as the user named it: the ``--configfile`` s given
    (``configfiles``; none: the Snakefile's ``config.yaml``) and the ``--config`` key=value
    arguments (``config_args``, a list of them, or their text), where there are any."""
    files = " ".join(f"--configfile {f}" for f in configfiles) or "config.yaml (the Snakefile's)"
    args = " ".join(map(str, config_args)) if isinstance(config_args, (list, tuple)) else (config_args or "")
    return files + (f" --config {args}" if args else "")


def stale_report_line(stamp: str, config: str = "this config", folder: str = "results") -> str:
    """The line that stops ``snakemake --report`` drawn from results whose input or settings stamp
    ``stamp`` the config ``config`` (:func:`config_named`), its sample sheet or a slide would change:
    results another config made (or this one before a setting, the sheet or a slide changed), which the
    report would show under this config's settings (the rules' params), rows of methods or seeds it
    does not have among them.  ``folder``: the results folder, as the user finds it."""
    return (f"snakemake --report refused: the results in {folder} were not made with this config ({config}), its "
            f"sample sheet and slides as they are now ({stamp} does not hold what they give), so the report "
            "would show another run's results under this config's settings. No report was written. Fix: give "
            "--report the --configfile / --config of the run that made these results (as --configfile "
            "config/recommended.yaml --config samples=my_slides.tsv), which draws them as they are, nothing "
            "rerun; or run this config first (snakemake --cores all, with the same --configfile / --config), "
            "then snakemake --report again")


def refuse_report(line: str):
    """Say ``line`` on stderr and end the process with status 1, before Snakemake writes any report
    (raised from an input function, a SystemExit passes through Snakemake's wrapping of errors)."""
    print(line, file=sys.stderr)
    raise SystemExit(1)


class RunStamps:
    """The stamps of one Snakemake run, as the rules ask for them (``rules/common.smk``).

    ``executes_jobs()``: whether the run executes jobs, asked when the first stamp is kept (false
    for ``-n``, ``--dag``, ``--summary``, ``--report``: the stamps it would write go to a temporary
    folder, :meth:`scratch`, deleted when the process ends).  ``report_only``: the run only draws the
    report (:func:`report_only`); a stamp that the config ``config`` (:func:`config_named`), its
    sheet or a slide would change then stops it, with ``refuse(line)`` (:func:`stale_report_line`;
    default :func:`refuse_report`).  ``root``: the folder the stamps' paths are relative to (the
    run's working directory).  ``exists(path)``: tells the DAG builder that the stamp ``path``
    exists: the stamps are written while Snakemake builds the DAG, and Snakemake takes a folder's
    listing once (its inventory), so a stamp written after its folder was listed (slide b's, where
    targets of slides a and b were asked for in a fresh folder) was a missing input."""

    def __init__(self, executes_jobs, report_only: bool = False, refuse=None, root: str = "",
                 config: str = "this config", exists=None):
        self._executes_jobs, self.report_only, self.root = executes_jobs, report_only, root
        self._refuse, self.config = refuse or refuse_report, config
        self._exists = exists or (lambda path: None)
        self._scratch: str | None = None
        self._inputs: dict[str, str | None] = {}

    def scratch(self) -> str | None:
        """None where jobs run; in a run that executes none, a temporary folder that takes the stamps
        it would write, so it writes nothing under results/ (deleted when the process ends)."""
        if self._executes_jobs():
            return None
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="stcore-dry-run-")
            atexit.register(shutil.rmtree, self._scratch, True)
        return self._scratch

    def kept(self, stamp: str, written: str | None) -> str | None:
        """``written`` (the stamp kept for ``stamp``, or a dry run's scratch copy of it); where the run
        only draws the report and the stamp changed (its scratch copy differs from ``stamp`` and
        ``stamp`` exists: one written for the first time, by a newer stcore, is no change), the
        report is refused (``refuse``)."""
        if self.report_only and written and written != stamp and os.path.exists(os.path.join(self.root, stamp)):
            folder = os.path.join(os.path.abspath(self.root or os.curdir), "results")
            self._refuse(stale_report_line(stamp, self.config, folder))
        if written:
            self._exists(written)
        return written

    def settings(self, stage: str, job: str, settings, stale: str | None = None) -> str:
        """The settings stamp of ``stage``'s job ``job`` holding ``settings`` (:func:`settings_stamp`;
        ``stale``: an input gone that the job's output lists, so the job runs again): the path to give
        the job as an input (a run that only draws the report makes nothing again)."""
        path = SETTINGS_STAMP.format(stage=stage, job=job)
        stale = None if self.report_only else stale
        return self.kept(path, settings_stamp(stage, job, settings, root=self.root, scratch=self.scratch(),
                                              stale=stale))

    def input(self, sample: str, digest_stamp, path: str | None = None) -> str | None:
        """The input stamp of slide ``sample`` (:data:`INPUT_STAMP`), kept by ``digest_stamp(stamp,
        scratch)`` (:func:`stcore.formats.digest_stamp` of the slide's files) once per run; None
        where ``digest_stamp`` is None (a slide the workflow makes) or keeps none (no files yet)."""
        if sample not in self._inputs:
            stamp = path or INPUT_STAMP.format(sample=sample)
            self._inputs[sample] = None if digest_stamp is None else self.kept(stamp, digest_stamp(stamp, self.scratch()))
        return self._inputs[sample]
