"""What every Snakemake script shares: logging to the rule's log file, and turning bad
input into one clear line instead of a traceback."""
from __future__ import annotations

import logging
import resource
import sys
from typing import Callable

from .errors import DivergenceError, InputError

__all__ = ["run_step", "peak_memory_mb"]


def peak_memory_mb() -> float:
    """This process's resident-memory high-water mark in MB (the kernel's, exact; Snakemake's
    benchmark records sample the memory every 30 s and can miss a short peak)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


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
        cause = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        logging.getLogger("stcore").exception(
            "sample '%s', step '%s': unexpected error %s%s (traceback below in this log)", sample, step_name,
            type(exc).__name__, f": {cause}" if cause else "")
        sys.exit(1)
