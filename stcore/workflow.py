"""What every Snakemake script shares: logging to the rule's log file, and turning bad
input into one clear line instead of a traceback."""
from __future__ import annotations

import logging
import resource
import sys
import time
import warnings
from typing import Callable

from .errors import DivergenceError, InputError

__all__ = ["run_step", "peak_memory_mb", "available_memory_mb", "cgroup_free_mb", "ANNOTATION_ELEMS", "checked_truth", "group_truth", "annotation_of"]

#: The elements of a slide's hvg.h5ad (:func:`stcore.io.read_h5ad_elems`) that :func:`checked_truth`
#: reads, the truth column's own ``uns`` entry aside.
ANNOTATION_ELEMS = ("obs", "obsm/spatial", "uns/provenance", "uns/stcore")


def checked_truth(slide: dict, truth: str, members: dict | None = None, group: str = ""):
    """``obs[truth]`` of a slide read by a step with :func:`stcore.io.read_h5ad_elems` (at least
    :data:`ANNOTATION_ELEMS` and ``uns/<truth>``), once :func:`stcore.validate.check_truth` takes it
    as the annotation; None where the sample sheet names none.  The steps that read the annotation
    (evaluate, consensus) check it, as the qc job does, because a changed truth column reruns them
    and not qc: a column that is no annotation is refused before any score is written, naming the
    slide's file.  A group's (``group``, its name; ``members``: slide -> (its qc.h5ad, its truth
    column), sheet order; :func:`group_truth`) is read from its slides' files and set as ``obs['truth']``."""
    if not truth:
        return None
    from .group import SLIDE_KEY

    obs = slide["obs"]
    if SLIDE_KEY in obs:
        if members:
            obs[truth] = group_truth(obs, members, group)
        return obs[truth]
    _check_annotation(slide, truth)
    return obs[truth]


def _check_annotation(slide: dict, truth: str) -> None:
    """:func:`stcore.validate.check_truth` on a slide's elements read by
    :func:`stcore.io.read_h5ad_elems`; its warnings logged."""
    import anndata as ad

    from .validate import check_truth

    spatial = slide.get("obsm/spatial")
    uns = {key.split("/", 1)[1]: slide[key] for key in ("uns/provenance", "uns/stcore", f"uns/{truth}")
           if key in slide}
    view = ad.AnnData(obs=slide["obs"], obsm={"spatial": spatial} if spatial is not None else None, uns=uns)
    for line in check_truth(view, truth, after_qc=True):
        logging.getLogger("stcore").warning("%s", line)


def group_truth(obs, members: dict, group: str):
    """A group's annotation for the spots of its ``obs`` (ids ``<slide>:<spot>``), read from its
    slides' own files (``members``: slide -> (its qc.h5ad, its truth column), sheet order), each
    column checked as a single slide's is (:func:`checked_truth`): the group's qc.h5ad holds no
    annotation, so that a changed truth column reruns the steps that read it, not the group's
    training.  As :func:`stcore.group.join_slides` joins it (one spelling of a label, warnings)."""
    from .group import group_annotation
    from .io import read_h5ad_elems

    frames, truths = {}, {}
    for name, (path, column) in members.items():
        elems = read_h5ad_elems(path, *ANNOTATION_ELEMS, *([f"uns/{column}"] if column else []))
        if column:
            try:
                _check_annotation(elems, column)
            except InputError as exc:       # named by the slide whose column it is, not the group
                raise exc.located(sample=name) from None
        frames[name], truths[name] = elems["obs"], column or ""
    return group_annotation(frames, truths, group).reindex(obs.index)


def reference_domains(sm, index):
    """The domains, aligned with ``index``, of the run whose colours a job's map and domains.h5ad match on a
    slide without an annotation (its ``reference`` input: the rules' Plan.map_reference; docs/results.md);
    None where the job has none (an annotated slide, the reference run itself)."""
    from .io import read_tsv

    return next((read_tsv(p, index_col="spot")["domain"].loc[index].to_numpy()
                 for p in getattr(sm.input, "reference", [])), None)


def annotation_of(sm) -> tuple[dict, str]:
    """A group's slides and its name as :func:`group_truth` and :func:`checked_truth` take them, from a
    Snakemake job's ``params.annotation`` (slide -> truth column), ``input.annotation`` (their qc.h5ad, in
    that order) and ``wildcards.sample``; ``({}, '')`` for a single slide."""
    truths = dict(getattr(sm.params, "annotation", None) or {})
    if not truths:
        return {}, ""
    return ({name: (path, column) for (name, column), path in zip(truths.items(), sm.input.annotation)},
            sm.wildcards.sample)


def sheet_row(sm) -> dict:
    """The job's slide's row of the sample sheet (the job's config's ``samples``), its ``path`` as the
    slide's reader opens it (:func:`stcore.plan.sheet.slide_path`: the config's ``data_dir`` applied).  The
    steps that read the slide's files (qc, export_spatialdata) take the path from here, not from a param
    or an input: the slide's input stamp, their input, stands for its files, so a folder moved or copied
    elsewhere with the same content reruns nothing."""
    from .plan.sheet import read_sheet, slide_path

    row = next(r for r in read_sheet(sm.config["samples"]) if r["sample"] == sm.wildcards.sample)
    return dict(row, path=slide_path(row, sm.config.get("data_dir") or ""))


def peak_memory_mb() -> float:
    """This process's resident-memory high-water mark in MB (the kernel's, exact; Snakemake's
    benchmark records sample the memory every 30 s and can miss a short peak)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def available_memory_mb() -> float | None:
    """MB this process can still take: the machine's available memory (psutil), or less where a
    control group limits it (:func:`cgroup_free_mb`: SLURM jobs, containers); None where
    neither can be read."""
    limited = cgroup_free_mb()
    free = [] if limited is None else [limited]
    try:
        import psutil

        free.append(psutil.virtual_memory().available / 2**20)
    except Exception:       # no psutil, or a platform it cannot read
        pass
    return min(free) if free else None


def cgroup_free_mb(proc: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> float | None:
    """MB left under the tightest memory limit of this process's control groups (its own and
    each one above it; cgroup v2 ``memory.max`` / ``memory.current``, v1 ``memory/...
    memory.limit_in_bytes`` / ``memory.usage_in_bytes``); None where no limit is set or readable."""
    from pathlib import Path

    try:
        lines = Path(proc).read_text().splitlines()
    except OSError:
        return None
    free = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[1] == "":                                   # v2: one hierarchy
            base, limit, usage = Path(root), "memory.max", "memory.current"
        elif "memory" in parts[1].split(","):                # v1: the memory controller's
            base, limit, usage = Path(root) / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        group = base / parts[2].lstrip("/")
        for level in [group, *group.parents]:
            if level != base and base not in level.parents:
                break
            try:
                cap, used = (level / limit).read_text().strip(), (level / usage).read_text().strip()
            except OSError:
                continue
            if cap.isdigit() and used.isdigit() and int(cap) < 2**60:     # 'max' or a huge number: no limit
                free.append((int(cap) - int(used)) / 2**20)
    return min(free) if free else None


def _unexpected(sample, step_name, exc) -> str:
    """The one line of an unexpected error: sample, step, exception type and first line."""
    cause = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return (f"sample '{sample}', step '{step_name}': unexpected error {type(exc).__name__}"
            f"{': ' + cause if cause else ''} (traceback below in this log)")


def log_uncaught_in_job() -> None:
    """In a Snakemake job (a script whose ``snakemake`` object is defined before it imports
    stcore), an exception raised outside :func:`run_step` (while importing, say) is written to the
    job's log as the line :func:`run_step` writes and its traceback, as well as to stderr."""
    import traceback

    job = getattr(sys.modules.get("__main__"), "snakemake", None)
    if job is None or not len(getattr(job, "log", ())):
        return
    previous = sys.excepthook

    def hook(kind, exc, tb):
        if issubclass(kind, Exception):
            sample = getattr(job.wildcards, "sample", None) or getattr(job.wildcards, "name", None) or "all"
            try:
                with open(job.log[0], "a") as fh:
                    fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR stcore: "
                             f"{_unexpected(sample, getattr(job, 'rule', '?'), exc)}\n")
                    fh.write("".join(traceback.format_exception(kind, exc, tb)))
            except OSError:
                pass
        previous(kind, exc, tb)

    sys.excepthook = hook


def run_step(snakemake, step: Callable[..., None], *, sample: str | None = None) -> None:
    """Run ``step(snakemake)`` with logging sent to ``snakemake.log[0]``.

    An :class:`InputError` (or a diverged training) is written as one line to the log and
    to stderr, and the job exits with status 1; Snakemake then removes its outputs.  Any other
    exception is written as one line naming the sample, the step and the cause, followed by its
    traceback, and the job exits with status 1 too; the line is what the end-of-run ``FAILED``
    list repeats (rules/common.smk).
    """
    log_file = snakemake.log[0] if len(snakemake.log) else None
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    # squidpy's import (the cellcharter and banksy jobs) makes docrep warn of its own docstrings'
    # keys ('n_jobs' is not a valid key!): about no input or setting of the run, so not logged
    warnings.filterwarnings("ignore", category=SyntaxWarning, module="docrep")
    if sample is None:
        sample = getattr(snakemake.wildcards, "sample", None)
    try:
        step(snakemake)
        logging.getLogger("stcore").info("peak memory %.0f MB", peak_memory_mb())
    except InputError as exc:
        exc = exc.located(sample=sample)
        logging.getLogger("stcore").error("%s", exc)
        sys.exit(1)
    except DivergenceError as exc:
        logging.getLogger("stcore").error("sample '%s': %s", sample, exc)
        sys.exit(1)
    except Exception as exc:
        step_name = getattr(snakemake, "rule", None) or getattr(step, "__module__", "step")
        logging.getLogger("stcore").exception("%s", _unexpected(sample, step_name, exc))
        sys.exit(1)
