"""When jobs fail: one line per failed job, repeated at the end of the console output, where the
user looks first (the ERROR line its step wrote to its log: bad input, diverged training, an
unexpected error with its traceback in the log)."""
from __future__ import annotations

import os
import re
import time


def failed_jobs(snakemake_logs):
    """(step, log file) of every job that failed, from Snakemake's own log of the run."""
    jobs = []
    for path in snakemake_logs or ():
        try:
            with open(path, errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        for step, block in re.findall(r"^Error in rule\s(\S+):\n((?:[ \t]+.*\n?)*)", text, re.M):
            found = re.search(r"^\s+log: ([^\s,]+)", block, re.M)
            if found and (step, found.group(1)) not in jobs:
                jobs.append((step, found.group(1)))
    return jobs


def job_sample(step, log):
    """The slide (or 'all') of a job, from its log's name (rules/*.smk: logs/<step>/<sample>[.<method>[.seed<seed>]].log)."""
    stem = os.path.basename(log)[:-len(".log")] if log.endswith(".log") else os.path.basename(log)
    if os.path.normpath(os.path.dirname(log)) == "logs":
        return "all"
    if step in ("qc", "hvg", "graph", "group", "simulate"):
        return stem
    return re.sub(r"\.[A-Za-z0-9_-]+(\.seed\d+|\.consensus)?$", "", stem)


def failure_lines(since, log_dir="logs", snakemake_logs=()):
    """One line per failed job: the ERROR line its step wrote to its log (logs changed since
    ``since``); for a job that died without one (killed, out of memory), a line naming its log,
    slide and step, which is also appended to that log."""
    lines, named = [], set()
    for root, _, files in os.walk(log_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            if not name.endswith(".log") or os.path.getmtime(path) < since:
                continue
            with open(path, errors="replace") as fh:
                found = [f"{path}: {line.split(' ERROR stcore: ', 1)[1].rstrip()}"
                         for line in fh if " ERROR stcore: " in line]
            if found:
                named.add(os.path.normpath(path))
            lines += found
    for step, log in failed_jobs(snakemake_logs):
        if os.path.normpath(log) in named:
            continue
        try:
            with open(log, errors="replace") as fh:
                last = [line.strip() for line in fh if line.strip()][-1:]
        except OSError:
            last = []
        cause = (f"the job ended without an error message; its log ends: {last[0][:300]}" if last else
                 "the job ended with an empty log (killed, or out of memory?); its error is in the console output above")
        line = f"sample '{job_sample(step, log)}', step '{step}': {cause}"
        lines.append(f"{log}: {line}")
        if not last:            # the log says so too
            try:
                with open(log, "a") as fh:
                    fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR stcore: {line}\n")
            except OSError:
                pass
    return lines


TABLE_FILES = ("results/table.tsv", "results/summary.md", "results/summary.html")


def earlier_table_line(since, files=TABLE_FILES):
    """A warning where a failed run leaves the results table of an earlier run (written before
    ``since``, the run's start): the table step did not run, so its rows are the earlier run's,
    beside result files this run rewrote.  None where no table is there or this run wrote it."""
    old = [f for f in files if os.path.isfile(f) and os.path.getmtime(f) < since]
    if not old:
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(old[0])))
    return (f"WARNING {', '.join(old)} are an earlier run's (written {when}), not this run's: its table step did "
            "not run or failed, so they do not show what this run made or changed (its rows are the earlier "
            "settings' and slides'). Fix: correct the failures above and run again; until then read each "
            "run's own results/<sample>/<method>/seed<seed>/metrics.tsv")


def end_of_run_lines(since, snakemake_logs=(), log_dir="logs", files=TABLE_FILES):
    """What a failed run prints last (Snakemake's onerror): ``FAILED <log>: <line>`` for each failed
    job (:func:`failure_lines`), then the warning of a table an earlier run wrote, where there is one
    (:func:`earlier_table_line`)."""
    lines = [f"FAILED {line}" for line in failure_lines(since, log_dir=log_dir, snakemake_logs=snakemake_logs)]
    table = earlier_table_line(since, files)
    return lines + ([table] if table else [])
