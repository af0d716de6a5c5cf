"""The demo DAG run through a live SLURM with profiles/slurm (and train on a GPU node with
profiles/slurm-gpu).

Needs a SLURM whose node answers; `sudo bash .ci/slurm-up.sh` starts a single-node one on
127.0.0.1.  Without one these tests skip, unless STCORE_REQUIRE_SLURM=1 (set by CI), in
which case they fail.  What they prove:

* every job Snakemake submitted is a SLURM job of this run (sbatch job ids in Snakemake's
  log, the same ids known to slurmctld under the run's job name, a SLURM log file written
  for each, and the controller's allocation record when its log is readable);
* every output of the DAG appeared (the two slides also train as one group), and a dry run
  afterwards has nothing left to do;
* a train job killed on the cluster (scancel while RUNNING) is reported as CANCELLED and
  submitted again with twice the memory and time, while every other job, the other slide
  included, ran exactly once (finished work is kept);
* under profiles/slurm-gpu, train is scheduled with a GPU (SLURM's JOB_GRES=gpu:1), while
  under profiles/slurm it is not.  The test node's GPU is declared for scheduling only (no
  device behind it), so train.device stays cpu here: CUDA training itself is not run.
"""
from __future__ import annotations

import collections
import contextlib
import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_workflow import SHEET, TINY

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
REQUIRED = os.environ.get("STCORE_REQUIRE_SLURM") == "1"
RUN_TIMEOUT = 600  # seconds for one Snakemake run through SLURM (about 4 min on 2 busy cores)

SAMPLES = ("tiny_a", "tiny_b")
KILLED = "rule_train_wildcards_tiny_a_graphst_0"  # the SLURM comment of the train job to kill
# The tiny two-slide run of test_workflow, with one method to keep the run short (the
# expression baseline goes through the same rules) and training pinned to the CPU.
CONFIG = copy.deepcopy(TINY)
CONFIG["train"]["device"] = "cpu"
CONFIG["methods"] = {"graphst": {"model": "graphst"}}
# SLURM jobs of one run: profiles/slurm groups a slide's simulate/qc/hvg/graph ("prep") and
# a run's cluster/evaluate/export ("post"); a group job's comment carries no wildcards.
# The two slides also form a group trained as one ("pair": rules/group.smk), as a user runs it.
SHEET_GROUP = "\n".join(line + ("\tgroup" if i == 0 else "\tpair") if line else line
                        for i, line in enumerate(SHEET.split("\n")))
EXPECTED_JOBS = collections.Counter({
    "rule_prep_graph_hvg_qc_simulate": 2,
    "rule_group_wildcards_pair": 1,
    "rule_prep_graph_hvg": 1,
    "rule_train_wildcards_tiny_a_graphst_0": 1,
    "rule_train_wildcards_tiny_b_graphst_0": 1,
    "rule_train_wildcards_pair_graphst_0": 1,
    "rule_post_cluster_evaluate_export": 3,
    "rule_table": 1,
})


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"SLURM is required here (STCORE_REQUIRE_SLURM=1) but {reason}")
    pytest.skip(f"no live SLURM: {reason} (start one with `sudo bash .ci/slurm-up.sh`)")


def _default_partition() -> str:
    """The name of the cluster's default partition (sinfo marks it with '*')."""
    partitions = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30,
                                check=True).stdout.split()
    return next(p for p in partitions if p.endswith("*")).rstrip("*")


@contextlib.contextmanager
def _partition_limit(partition: str, setting: str):
    """The partition with ``setting`` (scontrol update PartitionName=... MaxTime=60) while the block runs; then
    ``scontrol reconfigure`` (slurm.conf's partitions again: scontrol cannot set UNLIMITED back)."""
    update = subprocess.run(["scontrol", "update", f"PartitionName={partition}", setting],
                            capture_output=True, text=True, timeout=30)
    if update.returncode != 0:
        _unavailable(f"scontrol update refused (not a SLURM administrator?): {update.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["scontrol", "reconfigure"], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def slurm_node():
    """The name of a SLURM node that answers, or skip (fail when SLURM is required)."""
    if shutil.which("sinfo") is None:
        _unavailable("`sinfo` is not on PATH")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _unavailable("snakemake-executor-plugin-slurm is not installed")
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        _unavailable("`sinfo` did not answer within 30 s")
    if out.returncode != 0:
        _unavailable(f"`sinfo` failed: {out.stderr.strip()}")
    for line in out.stdout.splitlines():
        name, state = line.split()
        if state.rstrip("*~#!%$@^-") in ("idle", "mixed", "allocated", "completing"):
            return name
    _unavailable(f"no SLURM node is up (sinfo: {out.stdout.strip() or 'no nodes'})")


def _squeue(run_name: str) -> list[dict]:
    """Every job of a Snakemake run (its SLURM job name), finished ones included (they stay
    visible for MinJobAge seconds; slurm-up.sh sets 30 minutes)."""
    out = subprocess.run(["squeue", "-h", "--states=all", "--name", run_name, "-o", "%i|%T|%k|%m|%l"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    rows = []
    for line in out.splitlines():
        jobid, state, comment, mem, limit = line.split("|")
        rows.append({"id": jobid, "state": state, "comment": comment, "mem": mem, "limit": limit})
    return rows


def _job_field(jobid: str, field: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", "-d", jobid], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    match = re.search(rf"\b{field}=(\S*)", out)
    return match.group(1) if match else ""


def _mem_mb(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([KMGT]?)", value).groups()
    return float(number) * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2, "": 1}[unit]


def _minutes(limit: str) -> float:
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return (int(days or 0) * 24 + parts[0]) * 60 + parts[1] + parts[2] / 60


def _slurmctld_log() -> Path | None:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"SlurmctldLogFile\s*=\s*(\S+)", out)
    path = Path(match.group(1)) if match else None
    return path if path is not None and os.access(path, os.R_OK) else None


def _run_snakemake(workdir: Path, profile: str, *args: str, kill_comment: str | None = None,
                   timeout: float = RUN_TIMEOUT) -> dict:
    """Run Snakemake with a profile; optionally scancel the job with ``kill_comment`` once it
    is RUNNING.  Returns the log text, return code, SLURM run name and the killed job id; a run
    over ``timeout`` seconds is stopped (Ctrl-C) and the test fails."""
    log_path = workdir / f"snakemake-{profile}.log"
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--profile", str(REPO / "profiles" / profile),
           # Test settings, not site settings: keep the per-job SLURM logs for the checks,
           # and poll the queue soon after submitting (the default waits 40 s).
           "--slurm-keep-successful-logs", "--slurm-init-seconds-before-status-checks", "2", *args]
    run_name = killed = None
    killed_at = None
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    proc.send_signal(signal.SIGINT)  # Snakemake cancels its SLURM jobs
                    try:
                        proc.wait(60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                    pytest.fail(f"snakemake ran over {timeout}s:\n{log_path.read_text()[-4000:]}")
                if run_name is None:
                    match = re.search(r"SLURM run ID: (\S+)", log_path.read_text())
                    run_name = match.group(1) if match else None
                if kill_comment and killed is None and run_name:
                    for job in _squeue(run_name):
                        if job["comment"] == kill_comment and job["state"] == "RUNNING":
                            subprocess.run(["scancel", job["id"]], check=True, timeout=30)
                            killed, killed_at = job["id"], time.time()
                            break
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log_path.read_text()
    if run_name is None:
        match = re.search(r"SLURM run ID: (\S+)", text)
        run_name = match.group(1) if match else None
    return {"log": text, "rc": proc.returncode, "run": run_name, "killed": killed, "killed_at": killed_at}


def _submissions(log: str) -> dict[str, Path]:
    """SLURM job id -> its SLURM log file, from Snakemake's 'submitted with SLURM jobid' lines."""
    return {m.group(1): Path(m.group(2))
            for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)\.", log)}


@pytest.fixture(scope="module")
def cluster_run(slurm_node, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm")
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (workdir / "samples.tsv").write_text(SHEET_GROUP)
    run = _run_snakemake(workdir, "slurm", kill_comment=KILLED)
    assert run["run"], f"no SLURM run ID in Snakemake's log:\n{run['log'][-4000:]}"
    run["workdir"] = workdir
    run["jobs"] = _squeue(run["run"])
    return run


def test_dag_runs_as_slurm_jobs(cluster_run, slurm_node):
    run = cluster_run
    assert run["rc"] == 0, f"snakemake --profile profiles/slurm failed:\n{run['log'][-5000:]}"
    submitted = _submissions(run["log"])
    by_id = {job["id"]: job for job in run["jobs"]}
    # Snakemake's sbatch ids are exactly SLURM's jobs under this run's name.
    assert submitted and set(submitted) == set(by_id), (sorted(submitted), sorted(by_id))
    for jobid, slurm_log in submitted.items():
        assert slurm_log.is_file(), f"SLURM wrote no log for job {jobid}: {slurm_log}"
        assert slurm_log.resolve().is_relative_to((run["workdir"] / ".snakemake" / "slurm_logs").resolve())
        if jobid != run["killed"]:
            assert by_id[jobid]["state"] == "COMPLETED", by_id[jobid]
            assert _job_field(jobid, "NodeList") == slurm_node
    ctld_log = _slurmctld_log()
    if ctld_log is not None:  # readable as root (CI); the other checks stand without it
        text = ctld_log.read_text(errors="replace")
        for jobid in submitted:
            node = re.escape(slurm_node)
            started = (rf"Allocate JobId={jobid} NodeList={node}\b"  # main scheduler
                       rf"|Started JobId={jobid} in \S+ on {node}\b")  # backfill scheduler
            assert re.search(started, text), f"slurmctld never started job {jobid}"
    # Memory from the slide's size, not the profile's 2000 MB default (tiny slides: ~1 GB).  First
    # attempts only: the killed job's retry asks for twice as much, and SLURM may list it before
    # another slide's train job.
    first_attempts = [j for j in run["jobs"] if j["comment"].startswith("rule_train")
                      and (j["comment"] != KILLED or j["id"] == run["killed"])]
    assert first_attempts, run["jobs"]
    for job in first_attempts:
        assert _mem_mb(job["mem"]) < 2000, job


def test_every_output_appeared(cluster_run):
    w = cluster_run["workdir"]
    assert cluster_run["rc"] == 0, cluster_run["log"][-5000:]
    for sample in SAMPLES:
        for name in ("qc.h5ad", "qc.json", "hvg.h5ad", "graph.npz", "graph.json"):
            assert (w / "results" / sample / name).stat().st_size > 0, (sample, name)
        run_dir = w / "results" / sample / "graphst" / "seed0"
        for name in ("train.npz", "losses.tsv", "labels.tsv", "metrics.tsv", "domains.png"):
            assert (run_dir / name).stat().st_size > 0, (sample, name)
    for name in ("qc.h5ad", "hvg.h5ad", "graph.npz", "graphst/seed0/labels.tsv", "graphst/seed0/domains.h5ad"):
        assert (w / "results" / "pair" / name).stat().st_size > 0, ("pair", name)
    table = pd.read_csv(w / "results" / "table.tsv", sep="\t", dtype={"group": str}, keep_default_na=False)
    assert sorted(zip(table["sample"], table["group"], table["method"])) == sorted(
        [(s, g, "graphst") for s in SAMPLES for g in ("", "pair")])
    assert (w / "results" / "summary.md").stat().st_size > 0
    dry = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(w), "--configfile",
                          str(w / "config.yaml"), "--profile", str(REPO / "profiles" / "slurm"), "-n"],
                         capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout + dry.stderr


def test_killed_train_is_reported_and_retried_and_finished_work_kept(cluster_run):
    run = cluster_run
    killed = run["killed"]
    assert killed, f"the train job '{KILLED}' was never seen RUNNING, so it could not be killed"
    jobs = run["jobs"]
    by_id = {job["id"]: job for job in jobs}
    assert by_id[killed]["state"] == "CANCELLED", by_id[killed]
    # Reported by Snakemake, then submitted again.
    assert f"SLURM-job '{killed}' failed, SLURM status is: 'CANCELLED'" in run["log"], run["log"][-5000:]
    retries = [j for j in jobs if j["comment"] == KILLED and j["id"] != killed]
    assert len(retries) == 1 and retries[0]["state"] == "COMPLETED", retries
    # The second attempt asks for twice the memory and time (rules/common.smk).
    assert _mem_mb(retries[0]["mem"]) == pytest.approx(2 * _mem_mb(by_id[killed]["mem"]), abs=2)
    assert _minutes(retries[0]["limit"]) == pytest.approx(2 * _minutes(by_id[killed]["limit"]), abs=1)
    assert run["rc"] == 0
    # Nothing else ran twice: the other slide, and the killed slide's finished steps, were kept.
    completed = collections.Counter(j["comment"] for j in jobs if j["state"] == "COMPLETED")
    assert completed == EXPECTED_JOBS, completed
    w = run["workdir"]
    for name in ("qc.h5ad", "hvg.h5ad", "graph.npz"):
        assert (w / "results" / "tiny_a" / name).stat().st_mtime < run["killed_at"], name
    assert np.load(w / "results" / "tiny_a" / "graphst" / "seed0" / "train.npz")["embedding"].shape[0] > 0


def test_gpu_profile_schedules_train_on_a_gpu(cluster_run, slurm_node):
    """profiles/slurm-gpu: train is submitted with --gpus=1 and SLURM allocates the node's
    GPU.  The profile also sets train.device: cuda; this test replaces that with cpu on the
    command line, because the test node's GPU has no device behind it."""
    w = cluster_run["workdir"]
    assert cluster_run["rc"] == 0, "the CPU run must finish first"
    # Under profiles/slurm (train.device cpu) no train job got a GPU.
    for job in cluster_run["jobs"]:
        if job["comment"].startswith("rule_train") and job["state"] == "COMPLETED":
            assert _job_field(job["id"], "JOB_GRES") in ("", "(null)"), job
    target = "results/tiny_b/graphst/seed0/train.npz"
    before = (w / target).stat().st_mtime
    run = _run_snakemake(w, "slurm-gpu", target, "--config", "train={device: cpu}", "--forcerun", "train")
    assert run["rc"] == 0, f"snakemake --profile profiles/slurm-gpu failed:\n{run['log'][-5000:]}"
    assert "train jobs are given 1 GPU each" in run["log"]      # the profile's GPU beside device cpu is said
    jobs = _squeue(run["run"])
    assert [j["comment"] for j in jobs] == ["rule_train_wildcards_tiny_b_graphst_0"], jobs
    job = jobs[0]
    assert job["state"] == "COMPLETED", job
    assert set(_submissions(run["log"])) == {job["id"]}
    assert _job_field(job["id"], "TresPerJob") == "gres:gpu:1"
    assert _job_field(job["id"], "JOB_GRES") == "gpu:1"  # allocated, not only asked for
    assert (w / target).stat().st_mtime > before
    assert str(np.load(w / target)["device"]) == "cpu"


def test_a_job_no_node_can_run_is_refused_before_anything_is_submitted(slurm_node, tmp_path):
    """--set-threads train=N with N above the CPUs of every node of the partition: SLURM would keep the
    train jobs queued without end (squeue's reason PartitionConfig) and Snakemake wait with them.  The
    run stops before it submits anything, with one line naming the step, a sample, what it asks for, the
    largest node and the fix."""
    most = max(int(c.rstrip("+")) for c in subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True,
                                                          text=True, timeout=30, check=True).stdout.split())
    asked = 4 * most
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "samples.tsv").write_text(SHEET)
    start = time.monotonic()
    run = _run_snakemake(tmp_path, "slurm", "--set-threads", f"train={asked}", timeout=180)
    assert run["rc"] != 0, run["log"][-4000:]
    assert time.monotonic() - start < 170
    said = [line for line in run["log"].splitlines() if "asks SLURM for" in line]
    assert len(said) == 1, run["log"][-4000:]
    assert said[0].startswith(f"sample 'tiny_a', step 'train' (and 1 more of its jobs) asks SLURM for {asked} CPUs")
    assert f"has {most} CPUs" in said[0] and f"Fix: --set-threads train={most}" in said[0], said[0]
    assert not _submissions(run["log"]) and "submitted with SLURM jobid" not in run["log"]
    assert run["run"] and _squeue(run["run"]) == []
    assert not (tmp_path / "results" / "tiny_a").exists() and not (tmp_path / "results" / "simulated").exists()


def test_a_retry_no_node_can_run_is_warned_of_when_the_run_starts(slurm_node, tmp_path):
    """--set-resources 'train:mem_mb=N*attempt' with N under the largest node's memory and 2N over it: the
    first attempt fits, the second (the profile's retries: 2) sbatch refused, after the first had run.  The
    run warns when it starts, naming the attempt and what each attempt asks, and goes on: attempt 1 fits."""
    most = max(int(m.rstrip("+")) for m in subprocess.run(["sinfo", "-h", "-N", "-o", "%m"], capture_output=True,
                                                          text=True, timeout=30, check=True).stdout.split())
    first = most // 2 + 1
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "samples.tsv").write_text(SHEET)
    run = _run_snakemake(tmp_path, "slurm", "--set-resources", f"train:mem_mb={first}*attempt", timeout=480)
    said = [line for line in run["log"].splitlines() if "asks SLURM at attempt" in line]
    assert len(said) == 1, run["log"][-4000:]
    assert said[0].startswith(f"warning: sample 'tiny_a', step 'train' (and 1 more of its jobs) asks SLURM at attempt "
                              f"2 of 3 (the run's retries: 2; mem_mb {first}, {2 * first}, {3 * first} MB on its 3 "
                              f"attempts"), said[0]
    assert f"for {2 * first} MB of memory (mem_mb)" in said[0] and f"mem_mb={most}'" in said[0], said[0]
    assert run["rc"] == 0, run["log"][-4000:]                  # attempt 1 fits: the run went on and finished
    assert (tmp_path / "results" / "table.tsv").exists()


def test_a_job_over_the_partitions_max_mem_per_node_is_refused_before_anything_is_submitted(slurm_node, tmp_path):
    """A partition's MaxMemPerNode under what train asks (scontrol update PartitionName=... MaxMemPerNode=N),
    though the node has the memory: sbatch accepted the job and SLURM left it PENDING (MaxMemPerLimit) without
    end.  The run stops before it submits anything, naming the partition's limit.  The limit is set back with
    `scontrol reconfigure` (slurm.conf's partitions again: scontrol cannot set UNLIMITED back)."""
    partition = _default_partition()
    cap = 8000
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "samples.tsv").write_text(SHEET)
    with _partition_limit(partition, f"MaxMemPerNode={cap}"):
        run = _run_snakemake(tmp_path, "slurm", "--set-resources", f"train:mem_mb={cap + 1000}", timeout=180)
    assert run["rc"] != 0, run["log"][-4000:]
    said = [line for line in run["log"].splitlines() if "asks SLURM for" in line]
    assert len(said) == 1, run["log"][-4000:]
    assert said[0].startswith(f"sample 'tiny_a', step 'train' (and 1 more of its jobs) asks SLURM for {cap + 1000} MB "
                              f"of memory (mem_mb), but partition '{partition}' gives a job at most {cap} MB of a node "
                              f"(its MaxMemPerNode; "), said[0]
    assert f"--set-resources 'train:mem_mb={cap}'" in said[0] and "MaxMemPerLimit" in said[0], said[0]
    assert not _submissions(run["log"]) and "submitted with SLURM jobid" not in run["log"]
    assert run["run"] is None or _squeue(run["run"]) == []


def test_a_train_job_over_the_partitions_max_time_is_refused_before_anything_is_submitted(slurm_node, tmp_path):
    """train's runtime from the rule's own estimate (a slide read in place, 2,000 spots, 30,000 epochs: 65
    minutes) over the partition's MaxTime (scontrol update PartitionName=... MaxTime=60): train was sized from
    hvg.h5ad, not written when the run starts, so the start-of-run check did not see it; the prep jobs ran and
    the train jobs were left PENDING (PartitionTimeLimit) without end.  Now train is sized from the slide's
    matrix before hvg.h5ad exists, and the run stops before it submits anything, naming train (beside the post
    group, whose 90 minutes are over 60 too and were named before).  The limit is set back with
    `scontrol reconfigure`."""
    from stcore.simulate import SimParams, simulate_slide

    partition = _default_partition()
    simulate_slide(SimParams(n_spots=2000, n_genes=60, markers_per_domain=10, field_genes=10, n_layers=3,
                             seed=1)).write_h5ad(tmp_path / "slide.h5ad")
    config = copy.deepcopy(CONFIG)
    config["train"]["epochs"] = 30000
    config.pop("simulate", None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "samples.tsv").write_text(f"sample\tpath\tformat\tn_clusters\ttruth\nslide\t{tmp_path / 'slide.h5ad'}"
                                          "\th5ad\t3\tdomain\n")
    # no retries: the prep job's summed runtime (qc + hvg + graph) fits 60 minutes at attempt 1
    with _partition_limit(partition, "MaxTime=60"):
        run = _run_snakemake(tmp_path, "slurm", "--retries", "0", timeout=180)
    assert run["rc"] != 0, run["log"][-4000:]
    said = [line for line in run["log"].splitlines() if "step 'train' asks SLURM" in line]   # (post's 90 too)
    assert len(said) == 1, run["log"][-4000:]
    minutes = int(15 + 30000 * 2000 * 5e-5 / 60)
    assert said[0].startswith(f"sample 'slide', step 'train' asks SLURM for {minutes} minutes (runtime), but partition "
                              f"'{partition}' allows at most 60 minutes (its MaxTime; "), said[0]
    assert "PartitionTimeLimit" in said[0] and "--set-resources 'train:runtime=60'" in said[0], said[0]
    assert not _submissions(run["log"]) and "submitted with SLURM jobid" not in run["log"]
    assert run["run"] is None or _squeue(run["run"]) == []
    assert not (tmp_path / "results" / "slide").exists()


def test_a_simulated_slides_prep_job_counts_its_qc_and_hvg_when_the_run_starts(slurm_node, tmp_path):
    """A slide the simulate rule makes: its prep job (profiles/slurm's group of simulate, qc, hvg and graph) was
    sized when the run started, and submitted, with simulate's and graph's runtime alone (qc and hvg read files not
    made yet: <TBD>), 60 minutes of the profile's default 30 each.  Now qc and hvg are sized from the slide's
    simulate entry too, and the job asks for their minutes on top: under a partition MaxTime of 10 minutes over
    simulate (its own minutes, from the same entry) + graph (the profile's default), the run stops before it
    submits anything, naming the prep job.  The limit is set back with `scontrol reconfigure`."""
    from types import SimpleNamespace

    from stcore.plan.resources import JobResources

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    simulate = JobResources(SimpleNamespace(config=CONFIG)).simulate_runtime(SimpleNamespace(name="tiny_a"), None, 1)
    cap = simulate + int(profile["default-resources"]["runtime"]) + 10   # simulate + graph fit, with qc and hvg not
    partition = _default_partition()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "samples.tsv").write_text(SHEET)
    with _partition_limit(partition, f"MaxTime={cap}"):
        run = _run_snakemake(tmp_path, "slurm", "--retries", "0", timeout=180)
    assert run["rc"] != 0, run["log"][-4000:]
    said = [line for line in run["log"].splitlines() if "of steps graph, hvg, qc, simulate" in line]
    assert len(said) == 1, run["log"][-4000:]
    minutes = int(re.search(r"asks SLURM for (\d+) minutes \(runtime\)", said[0]).group(1))
    assert said[0].startswith("sample 'tiny_a', group job ") and minutes > cap, said[0]
    assert f"allows at most {cap} minutes (its MaxTime" in said[0], said[0]
    assert not _submissions(run["log"]) and "submitted with SLURM jobid" not in run["log"]
    assert run["run"] is None or _squeue(run["run"]) == []
    assert not (tmp_path / "results" / "simulated").exists()
