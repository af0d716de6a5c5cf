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
written under ``scratch`` instead, so the dry run still shows what the run would rerun."""
from __future__ import annotations

import hashlib
import json
import os

SETTINGS_STAMP = "results/records/settings/{stage}/{job}.json"


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


def settings_stamp(stage: str, job: str, settings, root: str = "", scratch: str | None = None) -> str:
    """Keep the stamp of ``stage``'s job ``job`` (a path under ``root``) holding ``settings``'
    digest; return its path (relative, as the rules name inputs).  Rewritten with a fresh
    modification time only when the digest changed; a new stamp is dated 1970.  ``scratch``: see
    :func:`write_stamp` (the path returned is then the one under ``scratch``)."""
    path = SETTINGS_STAMP.format(stage=stage, job=job)
    full = os.path.join(root, path)
    digest = settings_digest(settings)
    try:
        with open(full) as fh:
            old = json.load(fh).get("settings_sha256")
    except (OSError, ValueError, AttributeError):
        old = None
    if old == digest:
        return path
    first = old is None and not os.path.exists(full)
    written = write_stamp(full if scratch is None else path, {"settings_sha256": digest, "settings": settings},
                          times_ns=(0, 0) if first else None, scratch=scratch)   # first stamp: no rerun of its own
    return path if scratch is None else written


def report_only(argv) -> bool:
    """Whether the command line ``argv`` draws the report of results already made: ``--report``
    without ``--report-after-run`` (which runs the workflow first)."""
    args = [str(a) for a in argv]
    return (any(a == "--report" or a.startswith("--report=") for a in args)
            and "--report-after-run" not in args)


def report_before_run(table: str = "results/table.tsv") -> str | None:
    """The line that stops ``snakemake --report`` where no run has made the results table yet
    (Snakemake said only 'File results/table.tsv marked for report but does not exist'); None
    where it exists."""
    if os.path.exists(table):
        return None
    return (f"snakemake --report draws the report of a finished run, but {table} does not exist yet: no run "
            f"has finished in this folder ({os.getcwd()}). Fix: run the workflow first (snakemake --cores all, "
            "with the same --configfile / --config), then snakemake --report report.html; or both at once: "
            "snakemake --cores all --report report.html --report-after-run")


def stale_report_line(stamp: str) -> str:
    """The warning of ``snakemake --report`` drawn from results whose input or settings stamp
    ``stamp`` this config or sample sheet would change: results of an earlier config or slide."""
    return (f"WARNING the report is drawn from results made before the config, the sample sheet or a slide "
            f"changed ({stamp} does not hold what they are now), so it shows the earlier results as this "
            "config's. Fix: run the workflow first (snakemake --cores all, with the same --configfile / "
            "--config), then snakemake --report again")
