"""When jobs fail: one line per failed job, repeated at the end of the console output, where the
user looks first (the ERROR line its step wrote to its log: bad input, diverged training, an
unexpected error with its traceback in the log), then one line per cause that several jobs share."""
from __future__ import annotations

import glob
import os
import re
import time


def _read_log(path):
    """Snakemake's log of the run, the lines that a message carries on at the start of a line (sbatch's
    own error lines, the executor's 'For further error details ...') indented into their block; '' where
    it cannot be read."""
    try:
        with open(path, errors="replace") as fh:
            text = fh.read()
    except OSError:
        return ""
    return re.sub(r"^(sbatch: |For further error details)", r"    \1", text, flags=re.M)


def failed_jobs(snakemake_logs):
    """(step, log file) of every job that failed, from Snakemake's own log of the run."""
    jobs = []
    for path in snakemake_logs or ():
        text = _read_log(path)
        for step, block in re.findall(r"^Error in rule\s(\S+):\n((?:[ \t]+.*\n?)*)", text, re.M):
            found = re.search(r"^\s+log: ([^\s,]+)", block, re.M)
            if found and (step, found.group(1)) not in jobs:
                jobs.append((step, found.group(1)))
    return jobs


# SLURM's own words for a job it stopped, in the job's SLURM log (slurmstepd) or the status the executor
# reports ("SLURM-job '350' failed, SLURM status is: 'TIMEOUT'"): first match wins.
SLURM_MARKS = (("DUE TO TIME LIMIT", "TIMEOUT"), ("oom-kill", "OUT_OF_MEMORY"), ("OUT_OF_MEMORY", "OUT_OF_MEMORY"),
               ("Exceeded job memory limit", "OUT_OF_MEMORY"), ("DUE TO PREEMPTION", "PREEMPTED"),
               ("DUE TO NODE FAILURE", "NODE_FAIL"), ("CANCELLED AT", "CANCELLED"))
_EMBEDDED = re.compile(r"^Logfile (\S+):\n={80}\n(.*?)\n={80}$", re.M | re.S)   # show-failed-logs' copy of a log
_HEADER = re.compile(r"^([ \t]*)(?:\[[^\]]*\][ \t]*)?(Error in rule|rule|localrule) (\S+):$")
_GROUP = re.compile(r"^([ \t]*)message: Error in group (\S+)$")
_FIELD = re.compile(r"^([ \t]+)(\w+): (.*)$")


def _fields(lines, i, indent):
    """The ``key: value`` lines among those after line ``i`` indented deeper than ``indent``, and the next
    line's index."""
    fields = {}
    while i < len(lines) and len(lines[i]) - len(lines[i].lstrip()) > len(indent) and lines[i].strip():
        found = _FIELD.match(lines[i])
        if found:
            fields.setdefault(found.group(2), found.group(3))
        i += 1
    return fields, i


def _resources(text):
    """{name: value} of a Snakemake ``resources:`` line (those it knows: not <TBD>)."""
    pairs = (item.strip().partition("=") for item in (text or "").split(","))
    return {k: v for k, _, v in pairs if k and v and v != "<TBD>"}


def _logs(value):
    """The log files of a ``log:`` line (the step's own, then the SLURM log the executor adds)."""
    return [p for p in re.split(r",\s*", re.sub(r"\s*\(check log file.*$", "", value or "")) if p]


def slurm_failures(snakemake_logs):
    """{step log: facts} of the jobs that ran as SLURM jobs and failed, from Snakemake's log of the run:
    ``status`` (SLURM's, from the executor's message or the job's SLURM log: TIMEOUT, OUT_OF_MEMORY,
    CANCELLED, ...), ``job`` (SLURM job id), ``slurm_log``, ``resources`` of its last attempt (mem_mb,
    runtime in minutes, as submitted) and ``attempts`` (the resources of each), ``group`` (the name of a
    group job it ran in).  The copies of job logs that show-failed-logs prints are left out: their blocks
    are the job's own Snakemake's, inside the SLURM job."""
    facts, embedded = {}, {}
    for path in snakemake_logs or ():
        text = _read_log(path)
        for found in _EMBEDDED.finditer(text):
            embedded[found.group(1)] = found.group(2)
        lines = _EMBEDDED.sub("", text).split("\n")
        scheduled = {}                                  # jobid -> the resources of each attempt
        i = 0
        while i < len(lines):
            header, group = _HEADER.match(lines[i]), _GROUP.match(lines[i])
            if header and header.group(2) != "Error in rule":
                fields, i = _fields(lines, i + 1, header.group(1))
                if "jobid" in fields and not header.group(1):     # a job of its own, not a group's step
                    scheduled.setdefault(fields["jobid"], []).append(_resources(fields.get("resources")))
                continue
            if header:
                fields, i = _fields(lines, i + 1, header.group(1))
                logs = _logs(fields.get("log"))
                said = re.search(r"SLURM-job '(\d+)' failed.*?SLURM status is: '([A-Z_]+)'",
                                 fields.get("message", ""))
                refused = re.search(r"SLURM sbatch failed\. The error message was '(?:sbatch: error: )?(.*?)'?$",
                                    fields.get("message", ""))
                if refused and logs:                    # never queued: sbatch refused what it asks for
                    attempts = scheduled.get(fields.get("jobid"), [])
                    facts[os.path.normpath(logs[0])] = {
                        "status": "SBATCH", "job": None, "slurm_log": None, "refused": refused.group(1),
                        "resources": attempts[-1] if attempts else _resources(fields.get("resources")),
                        "attempts": attempts, "group": None}
                elif len(logs) > 1 or said:
                    attempts = scheduled.get(fields.get("jobid"), [])
                    facts[os.path.normpath(logs[0])] = {
                        "status": said.group(2) if said else None, "job": fields.get("external_jobid") or (
                            said.group(1) if said else None), "slurm_log": logs[1] if len(logs) > 1 else None,
                        "resources": attempts[-1] if attempts else {}, "attempts": attempts, "group": None}
                continue
            if group:                                   # a group job: its SLURM log, then its steps' logs
                indent, slurm_log, j = len(group.group(1)), None, i + 1
                while j < len(lines) and lines[j].strip() and len(lines[j]) - len(lines[j].lstrip()) >= indent:
                    field = _FIELD.match(lines[j])
                    if field and field.group(2) == "log":
                        if len(field.group(1)) == indent:
                            slurm_log = (_logs(field.group(3)) or [None])[0]
                        elif slurm_log:
                            job = re.search(r"(\d+)\.log$", slurm_log)
                            facts[os.path.normpath(_logs(field.group(3))[0])] = {
                                "status": None, "job": job.group(1) if job else None, "slurm_log": slurm_log,
                                "resources": {}, "attempts": [], "group": group.group(2)}
                    j += 1
                i = j
                continue
            i += 1
    for fact in facts.values():                     # what SLURM wrote in the job's log: why it stopped it
        if fact["status"] in (None, "FAILED", "CANCELLED") and fact["slurm_log"]:
            try:
                with open(fact["slurm_log"], errors="replace") as fh:
                    text = fh.read()
            except OSError:
                text = embedded.get(fact["slurm_log"], "")
            fact["status"] = next((status for mark, status in SLURM_MARKS if mark in text), fact["status"])
    return facts


def slurm_line(step, fact, partitions=None):
    """Why SLURM stopped a job and the fix (the limit it ran into, as asked for), or None where SLURM did
    not stop it (the step failed by itself: its own log says why).  ``partitions``: what sinfo says of the
    cluster (:func:`~.resources.slurm_partitions`), to name the largest node where sbatch refused memory."""
    status, job = fact["status"], fact["job"] or "?"
    where = f"job {job}" + (f" (group job '{fact['group']}')" if fact["group"] else "")
    seen = f"; its SLURM log: {fact['slurm_log']}" if fact["slurm_log"] else ""
    limits = {"TIMEOUT": ("runtime", "its time limit", "minutes", "time"),
              "OUT_OF_MEMORY": ("mem_mb", "its memory", "MB", "memory")}
    if status in limits:
        key, what, unit, noun = limits[status]
        had = fact["resources"].get(key)
        asked = [a.get(key) for a in fact["attempts"]]
        said = f"{what}, {key}={had} {unit}" if had else what
        if had and len(asked) > 1 and len(set(asked)) == 1:
            said += (f", the same on each of its {len(asked)} attempts (a number given in the profile or with "
                     "--set-resources / --default-resources is not multiplied by the attempt)")
        more = (f"--set-resources '{step}:{key}={2 * int(float(had))}*attempt'" if had and
                re.fullmatch(r"[\d.]+", had) else f"--set-resources '{step}:{key}=<more>*attempt'")
        return (f"SLURM stopped {where} at {said} ({status}). Fix: give {step} more {noun}, e.g. {more} on "
                f"the command line (or under set-resources: in the profile), and run the same command again{seen}")
    if status == "SBATCH":
        tries, mem = len(fact["attempts"]), fact["resources"].get("mem_mb")
        which, ran = (f"attempt {tries} of the job", "that attempt") if tries > 1 else ("the job", "it")
        if "memory" in fact["refused"].lower() and mem:
            return _memory_refused(step, fact, which, ran, partitions)
        partition = "partition" in fact["refused"].lower()
        return (f"sbatch refused to queue {which} ({fact['refused']}), so {ran} never ran. Fix: "
                + ("give slurm_partition one of the cluster's partitions (sinfo -s lists them)" if partition else
                   "correct what the job asks SLURM for (partition, account, memory, time, GPUs)")
                + " in the profile's default-resources / set-resources, or in --default-resources / --set-resources "
                  "on the command line; the sbatch call is in the console output above")
    why = {"CANCELLED": "cancelled with scancel, by you or the cluster's administrators",
           "PREEMPTED": "preempted for a job of higher priority", "NODE_FAIL": "its node failed",
           "BOOT_FAIL": "its node failed to boot", "DEADLINE": "it did not start before its deadline"}
    if status in why:
        return (f"SLURM ended {where} with status {status} ({why[status]}), not for an error of the step. "
                f"Fix: run the same command again{seen}")
    return None


def _memory_refused(step, fact, which, ran, partitions):
    """The line of a job sbatch refused for its memory: what it asked for (on each attempt: a retry asks
    ``attempt`` times the first), the most one job of its partition can have on a node, where sinfo and
    scontrol said (:func:`~.resources.memory_limit`, the limit the start-of-run check uses: the largest
    node's memory, or the partition's MaxMemPerNode / MaxMemPerCPU where less), and the fix."""
    from .resources import job_partition, memory_limit

    mem = fact["resources"]["mem_mb"]
    asked = [a.get("mem_mb") for a in fact["attempts"]]
    grew = (f" (mem_mb {', '.join(str(a) for a in asked)} MB on its {len(asked)} attempts: a retry asks `attempt` "
            "times the first)" if len(asked) > 1 and len(set(asked)) > 1 else "")
    name, part = job_partition(fact["resources"].get("slurm_partition"), partitions)
    most, words = memory_limit(name, part) if part else (None, None)
    offers = f", more than {words}" if most else ""
    return (f"sbatch refused to queue {which} ({fact['refused']}): it asks for mem_mb={mem} MB{grew}{offers}, so {ran} "
            f"never ran. Fix: give {step} at most what a node has on every attempt, e.g. --set-resources "
            f"'{step}:mem_mb={most or '<MB of the largest node: sinfo -N -o %m>'}' (the same on each attempt) on the "
            f"command line (or under set-resources: in the profile), or a partition with larger nodes (set-resources: "
            f"{step}: slurm_partition: in the profile); the sbatch call is in the console output above")


def job_sample(step, log):
    """The slide (or 'all') of a job, from its log's name (rules/*.smk: logs/<step>/<sample>[.<method>[.seed<seed>
    |.consensus][.zarr]].log)."""
    stem = os.path.basename(log)[:-len(".log")] if log.endswith(".log") else os.path.basename(log)
    if os.path.normpath(os.path.dirname(log)) == "logs":
        return "all"
    if step in ("qc", "hvg", "graph", "group", "simulate"):
        return stem
    return re.sub(r"\.[A-Za-z0-9_-]+(\.seed\d+|\.consensus)?(\.zarr)?$", "", stem)


# Snakemake's own line, in its log of the run, where the user stopped the run (Ctrl-C: SIGINT).
STOPPED_BY_USER = "Terminating processes on user request"
STOPPED_CAUSE = ("the run was stopped (Ctrl-C) while this job ran, so it did not finish and none of its outputs "
                 "was kept. Fix: run the same command again: the finished jobs are kept and this one runs again")


def stopped_by_user(snakemake_logs):
    """Whether Snakemake's log of the run says the user stopped it (Ctrl-C)."""
    return any(STOPPED_BY_USER in _read_log(path) for path in snakemake_logs or ())


def failure_lines(since, log_dir="logs", snakemake_logs=(), cluster=dict):
    """One line per failed job: the ERROR line its step wrote to its log (logs changed since
    ``since``); for a job that died without one, a line naming its log, slide and step, which is also
    appended to that log: where SLURM stopped it (time limit, memory, scancel), SLURM's reason, the
    limit it had and the fix (:func:`slurm_line`; ``cluster()``: what sinfo says of the cluster, asked only
    where sbatch refused a job); where the user stopped the run (Ctrl-C, :func:`stopped_by_user`), that
    and the fix; else that it was killed or its log's last line.  Each as ``<log>: <line>``."""
    return [f"{log}: {line}" for log, line in _failures(since, log_dir, snakemake_logs, cluster)]


def _failures(since, log_dir, snakemake_logs, cluster):
    """(log, line) of each line of :func:`failure_lines`."""
    lines, named = [], set()
    for root, _, files in os.walk(log_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            if not name.endswith(".log") or os.path.getmtime(path) < since:
                continue
            with open(path, errors="replace") as fh:
                found = [(path, line.split(' ERROR stcore: ', 1)[1].rstrip())
                         for line in fh if " ERROR stcore: " in line]
            if found:
                named.add(os.path.normpath(path))
            lines += found
    slurm = slurm_failures(snakemake_logs)
    partitions = cluster() if any(f["status"] == "SBATCH" for f in slurm.values()) else None
    interrupted = stopped_by_user(snakemake_logs)
    for step, log in failed_jobs(snakemake_logs):
        if os.path.normpath(log) in named:
            continue
        stopped = slurm_line(step, slurm[os.path.normpath(log)], partitions) if os.path.normpath(log) in slurm else None
        if stopped:
            line = f"sample '{job_sample(step, log)}', step '{step}': {stopped}"
            lines.append((log, line))
            _append_error(log, line)
            continue
        try:
            with open(log, errors="replace") as fh:
                last = [line.strip() for line in fh if line.strip()][-1:]
        except OSError:
            last = []
        cause = (STOPPED_CAUSE if interrupted else
                 f"the job ended without an error message; its log ends: {last[0][:300]}" if last else
                 "the job ended with an empty log (killed, or out of memory?); its error is in the console output above")
        line = f"sample '{job_sample(step, log)}', step '{step}': {cause}"
        lines.append((log, line))
        if not last or interrupted:            # the log says so too
            _append_error(log, line)
    return lines


def _append_error(log, line):
    """Write ``line`` to the job's ``log`` as the steps write their ERROR lines (a log that cannot be
    written: left as it is)."""
    try:
        with open(log, "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR stcore: {line}\n")
    except OSError:
        pass


TABLE_FILES = ("results/table.tsv", "results/summary.md", "results/summary.html")


def earlier_table_line(since, files=TABLE_FILES, stopped=False):
    """A warning where a failed run leaves the results table of an earlier run (written before
    ``since``, the run's start): the table step did not run, so its rows are the earlier run's,
    beside result files this run rewrote.  None where no table is there or this run wrote it.
    ``stopped``: the user stopped the run (Ctrl-C), so the fix is to run it again."""
    old = [f for f in files if os.path.isfile(f) and os.path.getmtime(f) < since]
    if not old:
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(old[0])))
    fix = "run the same command again" if stopped else "correct the failures above and run again"
    return (f"WARNING {', '.join(old)} are an earlier run's (written {when}), not this run's: its table step did "
            f"not run{' (the run was stopped)' if stopped else ' or failed'}, so they do not show what this run "
            "made or changed (its rows are the earlier settings' and slides'). "
            f"Fix: {fix}; until then read each run's own results/<sample>/<method>/seed<seed>/metrics.tsv")


def no_table_line(since, files=TABLE_FILES, stopped=False):
    """A note where a failed run leaves no results table at all (its first run; ``--keep-going``) but some of
    its runs finished (a ``metrics.tsv`` written since ``since``, the run's start): where their scores and
    domains are, as the table step gathers every run of the config and made none.  None where a table is
    there (:func:`earlier_table_line`) or no run finished."""
    if any(os.path.isfile(f) for f in files):
        return None
    made = sorted(f for f in glob.glob(os.path.join("results", "*", "*", "*", "metrics.tsv"))
                  if os.path.getmtime(f) >= since)
    if not made:
        return None
    fix = ("run the same command again" if stopped else
           "correct the failures above (or take the failing slide or method out of the config) and run again")
    return (f"NOTE {files[0]} and the summaries were not made: the table step gathers every run of the config, "
            f"and not all finished. {len(made)} run(s) did, each with its scores in its metrics.tsv and its domains "
            f"in domains.h5ad beside it (results/<sample>/<method>/<seed>/; first: {made[0]}). Fix: {fix}: "
            "the finished runs are kept and the table is made")


def end_of_run_lines(since, snakemake_logs=(), log_dir="logs", files=TABLE_FILES, cluster=dict):
    """What a failed run prints last (Snakemake's onerror): ``FAILED <log>: <line>`` for each failed
    job (:func:`failure_lines`), then one line for each cause that two failed jobs or more share
    (:func:`shared_cause_lines`), then the warning of a table an earlier run wrote, where there is one
    (:func:`earlier_table_line`), or, where there is none, where the finished runs' results are
    (:func:`no_table_line`)."""
    failures = _failures(since, log_dir, snakemake_logs, cluster)
    lines = [f"FAILED {log}: {line}" for log, line in failures] + shared_cause_lines(failures)
    stopped = stopped_by_user(snakemake_logs)
    table = earlier_table_line(since, files, stopped=stopped) or no_table_line(since, files, stopped=stopped)
    return lines + ([table] if table else [])


# Where a failure's line says it happened ("sample 's', file 'f': ", "sample 's', step 'train': "), and a number
# in its cause (spots, GB free, an epoch, a SLURM job id: they differ between the jobs of one cause).
_WHERE = re.compile(r"^sample '[^']*'(?:, (?:file|step) '[^']*')*: ")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?!\w)")
_JOB = re.compile(r"(?P<method>[A-Za-z0-9_-]+)(?:\.(?:seed(?P<seed>\d+)|(?P<consensus>consensus)))?(?:\.zarr)?")


def _job(log):
    """(step folder, slide, method, seed or 'consensus'), each None where the name has none, of a job's log
    (rules/*.smk: logs/<step>/<sample>[.<method>[.seed<seed>|.consensus][.zarr]].log; logs/<step>.log for a job
    of every slide)."""
    stem = os.path.basename(log)[:-len(".log")] if log.endswith(".log") else os.path.basename(log)
    step = os.path.basename(os.path.dirname(os.path.normpath(log)))
    if step == "logs" or not step:
        return stem, None, None, None
    sample = job_sample(step, log)
    found = _JOB.fullmatch(stem[len(sample) + 1:]) if stem != sample else None
    if not found:
        return step, sample, None, None
    return step, sample, found.group("method"), found.group("seed") or found.group("consensus")


def _seeds(seeds):
    """'seed 0', 'seeds 0-2', 'seeds 0, 2 and consensus', 'consensus' of a job's seeds."""
    numbers = sorted({int(s) for s in seeds if s != "consensus"})
    runs, named = [], []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    for run in runs:
        named += [f"{run[0]}-{run[-1]}"] if len(run) > 2 else [str(n) for n in run]
    said = ", ".join(named)
    if "consensus" in seeds:
        said = f"{said} and consensus" if said else "consensus"
    return ("seeds " if len(numbers) > 1 else "seed " if numbers else "") + said


def _slides(slides, most=10):
    """'slide a', 'slides a, b', 'slides a, b, ... and 390 more' (the first ``most`` named)."""
    named = ", ".join(slides[:most]) + (f" and {len(slides) - most} more" if len(slides) > most else "")
    return f"slide{'s' if len(slides) > 1 else ''} {named}"


def _jobs_said(logs):
    """The failed jobs of ``logs`` in words, step by step, method by method: 'train: banksy, seeds 0-2 of
    slides a, b; qc: slide c'."""
    steps = {}                             # step -> method -> slide -> seeds
    for log in logs:
        step, sample, method, seed = _job(log)
        seeds = steps.setdefault(step, {}).setdefault(method, {}).setdefault(sample, [])
        if seed is not None and seed not in seeds:
            seeds.append(seed)
    parts = []
    for step, methods in steps.items():
        said = []
        for method, slides in methods.items():
            alike = {}                     # the slides failing at the same seeds, said once
            for sample, seeds in slides.items():
                alike.setdefault(tuple(sorted(seeds, key=str)), []).append(sample)
            for seeds, samples in alike.items():
                where = _slides(samples) if samples != [None] else ""
                what = " of ".join(w for w in (_seeds(seeds) if seeds else "", where) if w)
                said.append(", ".join(w for w in (method, what) if w))
        parts.append(f"{step}: {'; '.join(said)}" if any(said) else step)
    return "; ".join(parts)


def shared_cause_lines(failures):
    """One line for each cause that two failed jobs or more share (``failures``: (log, line) of each, as
    :func:`failure_lines`), after their FAILED lines: how many, the cause once (their line without the slide
    and file it names, e.g. an extra not installed, a memory refusal) and which jobs (step, method, seeds,
    slides), so that a cause failing at every seed of every slide reads as one to fix.  Numbers in a cause
    (spots, GB free, an epoch) may differ between its jobs: the line names whose it shows.  [] where no
    two failures share one."""
    causes = {}                            # the cause, numbers left out -> {log: its cause}
    for log, line in failures:
        cause = _WHERE.sub("", line, count=1)
        causes.setdefault(_NUMBER.sub("#", cause), {}).setdefault(log, cause)
    lines = []
    for jobs in causes.values():
        if len(jobs) < 2:
            continue
        (first, cause), said = next(iter(jobs.items())), _jobs_said(list(jobs))
        if len(set(jobs.values())) > 1:
            said += f"; its numbers differ between them: those of {first}"
        lines.append(f"{len(jobs)} of the failures above give one reason: {cause} ({said})")
    return lines
