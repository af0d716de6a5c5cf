"""Nothing lost when a run dies, outputs atomic, degenerate slides work, numbers stay finite,
and a diverging training says so."""
from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import DATA
from slides import REPO, SNAKEMAKE, leftovers, run_library, snakemake, tiny_slide, workdir, write
from stcore.graph import spatial_adjacency
from stcore.io import atomic_path, write_h5ad
from stcore.simulate import SimParams, simulate_slide
from stcore.train import DivergenceError, TrainParams, fit_graph_model
from stcore.workflow import run_step


def _snapshot(paths):
    return {p: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths}


def _job_counts(dry_run_stdout: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run."""
    counts, in_table = {}, False
    for line in dry_run_stdout.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
        elif in_table and parts and parts[0] == "total":
            break
    return counts


# --- nothing lost --------------------------------------------------------------------------------

def test_sigkill_during_train_keeps_finished_work(tmp_path):
    """SIGKILL the whole run while the second slide trains; after --unlock the rerun redoes
    only that slide's train and what follows, and every finished file keeps its bytes and mtime."""
    write(tiny_slide(seed=1), tmp_path / "first.h5ad")
    write(tiny_slide(n_side=14, seed=2), tmp_path / "second.h5ad")
    workdir(tmp_path, {"first": ("first.h5ad", 2, "domain"), "second": ("second.h5ad", 2, "domain")},
            epochs=400)
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "1",
           "--prioritize", "results/first/graphst/seed0/metrics.tsv", "results/first/graphst/seed0/domains.h5ad"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    train_log = tmp_path / "logs/train/second.graphst.seed0.log"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if train_log.is_file() and "epoch 1/" in train_log.read_text():
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the second slide's training could be killed"
        assert time.time() < deadline, "the second slide's training never started"
        first_done = all((tmp_path / f"results/first/graphst/seed0/{name}").is_file()
                         for name in ("metrics.tsv", "domains.h5ad"))
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert first_done
    last_epoch = train_log.read_text().strip().splitlines()[-1]
    assert "/400 " in last_epoch and "epoch 400/400" not in last_epoch, last_epoch   # killed mid-training
    second_train = tmp_path / "results/second/graphst/seed0/train.npz"
    assert not second_train.exists()                        # no half-written output under its name
    finished = [p for p in (tmp_path / "results").rglob("*") if p.is_file() and ".part" not in p.name]
    before = _snapshot(finished)
    assert any("first/graphst/seed0/metrics.tsv" in str(p) for p in before)
    assert any("second/graph.npz" in str(p) for p in before)

    assert snakemake(tmp_path, "--unlock").returncode == 0
    dry = snakemake(tmp_path, "--dry-run", "--cores", "1")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert _job_counts(dry.stdout) == {"train": 1, "cluster": 1, "evaluate": 1, "export": 1, "table": 1,
                                       "all": 1}, dry.stdout
    rerun = snakemake(tmp_path, "--cores", "1")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _snapshot(before) == before                      # finished outputs untouched
    assert (tmp_path / "results/second/graphst/seed0/metrics.tsv").is_file()
    assert (tmp_path / "results/table.tsv").is_file()
    assert leftovers(tmp_path) == []


def test_write_killed_midway_leaves_no_output(tmp_path):
    """A process killed while writing an h5ad leaves only a hidden '.part' file, never a
    truncated file under the output's name (which Snakemake would take as done)."""
    target = tmp_path / "results" / "qc.h5ad"
    code = f"""
import os, signal, sys
sys.path.insert(0, {str(REPO / 'tests')!r})
import anndata as ad
from slides import tiny_slide
from stcore.io import write_h5ad
real = ad.AnnData.write_h5ad
def dies_halfway(self, path, **kw):
    real(self, path, **kw)
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
    os.kill(os.getpid(), signal.SIGKILL)
ad.AnnData.write_h5ad = dies_halfway
write_h5ad(tiny_slide(), {str(target)!r})
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert not target.exists()
    assert [p.name.startswith(".qc.h5ad.") and p.name.endswith(".part.h5ad")
            for p in target.parent.iterdir()] == [True]
    # the next write of the same output (the job rerun) removes what the killed one left
    write_h5ad(tiny_slide(), target)
    assert [p.name for p in target.parent.iterdir()] == ["qc.h5ad"]


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "labels.tsv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [target]
    write_h5ad(tiny_slide(), tmp_path / "s.h5ad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tsv", "s.h5ad"]


# --- degenerate but valid slides ------------------------------------------------------------------

def _check_run(result, labels, metrics, n_spots):
    assert np.isfinite(result.embedding).all() and np.isfinite(result.decoded).all()
    assert np.isfinite(result.losses[["total", "reconstruction", "contrastive"]].to_numpy()).all()
    assert labels.shape == (n_spots,)
    assert all(np.isfinite(v) for v in metrics.values() if isinstance(v, float)), metrics


def test_single_domain_slide(tmp_path):
    path = write(tiny_slide(domains=1), tmp_path / "one.h5ad")
    _check_run(*run_library(path), 64)


def test_twenty_spot_slide(tmp_path):
    path = write(tiny_slide(n_side=5)[:20].copy(), tmp_path / "twenty.h5ad")
    _check_run(*run_library(path, n_clusters=3), 20)


def test_zero_variance_genes(tmp_path):
    adata = tiny_slide(n_genes=40)
    x = adata.X.toarray()
    x[:, :5] = 7          # constant in every spot
    x[:, 5:10] = 0        # never detected (QC drops them)
    adata.X = sp.csr_matrix(x)
    path = write(adata, tmp_path / "flat.h5ad")
    _check_run(*run_library(path, n_top_genes=20), 64)


def test_duplicated_coordinates(tmp_path):
    adata = tiny_slide()
    xy = adata.obsm["spatial"].copy()
    xy[32:] = xy[:32]     # two spots at each of 32 places
    adata.obsm["spatial"] = xy
    path = write(adata, tmp_path / "dup.h5ad")
    _check_run(*run_library(path), 64)
    adj = spatial_adjacency(xy)
    assert (adj != adj.T).nnz == 0 and adj.diagonal().sum() == 0


# --- numerically safe -----------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [2.0, 1e7], ids=["very_sparse", "very_deep"])
def test_extreme_depth_stays_finite(tmp_path, depth):
    adata = simulate_slide(SimParams(n_spots=150, n_genes=120, markers_per_domain=15, n_layers=3, n_regions=0,
                                     depth=depth, field_genes=20, seed=4))
    path = write(adata, tmp_path / "extreme.h5ad")
    result, labels, metrics = run_library(path, n_clusters=3, epochs=20, n_top_genes=60)
    _check_run(result, labels, metrics, result.embedding.shape[0])


def _shared_slides():
    return sorted(DATA.glob("*/*.h5ad")) if DATA.is_dir() else []


@pytest.mark.skipif(not _shared_slides(), reason=f"shared data not found at {DATA} (set STCORE_DATA)")
@pytest.mark.parametrize("path", _shared_slides(), ids=lambda p: p.stem)
def test_shared_slides_stay_finite(path):
    import anndata as ad

    x = ad.read_h5ad(path, backed="r").X[:200]
    data = x.data if sp.issparse(x) else np.asarray(x)
    integer = bool(np.array_equal(data, np.round(data)))   # MERFISH holds normalised values
    result, _, _ = run_library(path, truth="", n_clusters=7, epochs=3, n_top_genes=3000,
                               flavor="seurat_v3" if integer else "seurat", cluster=False)
    assert np.isfinite(result.embedding).all() and np.isfinite(result.decoded).all()
    assert np.isfinite(result.losses["total"]).all()


# --- a diverging training fails with a clear message ---------------------------------------------

def _small_problem():
    rng = np.random.default_rng(0)
    x = sp.random(60, 30, density=0.3, random_state=0, dtype=np.float32).tocsr()
    return x, spatial_adjacency(rng.uniform(0, 10, (60, 2)))


@pytest.mark.parametrize("lr", [1e6, 1e10])
def test_divergence_is_detected(lr):
    x, adj = _small_problem()
    with pytest.raises(DivergenceError, match=r"training diverged at epoch \d+: .*lower lr"):
        fit_graph_model(x, adj, TrainParams(epochs=30, lr=lr, device="cpu", log_every=0))


def test_divergence_in_a_rule_is_one_line_and_exit_1(tmp_path):
    x, adj = _small_problem()
    log = tmp_path / "train.log"
    sm = SimpleNamespace(log=[str(log)], wildcards=SimpleNamespace(sample="s1"))

    def step(_):
        fit_graph_model(x, adj, TrainParams(epochs=30, lr=1e10, device="cpu", log_every=0))

    with pytest.raises(SystemExit) as exit_:
        run_step(sm, step)
    logging.getLogger().handlers.clear()
    assert exit_.value.code == 1
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1 and "ERROR stcore: sample 's1': training diverged at epoch" in lines[0], lines


def test_the_memory_free_is_read_under_the_jobs_own_memory_limit(tmp_path):
    """A job's memory limit (SLURM's, a container's) is that of its own control group or one above it,
    not of the root: cgroup v2 and v1 are read at the process's path, the tightest level wins, and
    'max' (or v1's huge number) is no limit."""
    from stcore.workflow import cgroup_free_mb

    gib = 2**30
    v2 = tmp_path / "v2"
    job = v2 / "slurm" / "job_7" / "step_0"
    job.mkdir(parents=True)
    for level, cap, used in ((v2, "max", 9 * gib), (v2 / "slurm", str(64 * gib), 20 * gib),
                             (v2 / "slurm" / "job_7", str(4 * gib), 1 * gib), (job, "max", 1 * gib)):
        (level / "memory.max").write_text(cap + "\n")
        (level / "memory.current").write_text(f"{used}\n")
    (tmp_path / "cgroup_v2").write_text("0::/slurm/job_7/step_0\n")
    assert cgroup_free_mb(str(tmp_path / "cgroup_v2"), str(v2)) == 3 * 1024
    v1 = tmp_path / "v1"
    (v1 / "memory" / "docker" / "c1").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text(f"{5 * gib}\n")
    (v1 / "memory" / "docker" / "c1" / "memory.limit_in_bytes").write_text(f"{2 * gib}\n")
    (v1 / "memory" / "docker" / "c1" / "memory.usage_in_bytes").write_text(f"{gib // 2}\n")
    (tmp_path / "cgroup_v1").write_text("4:memory:/docker/c1\n3:cpuset:/\n")
    assert cgroup_free_mb(str(tmp_path / "cgroup_v1"), str(v1)) == 1536
    (tmp_path / "unlimited").write_text("4:memory:/\n0::/\n")
    assert cgroup_free_mb(str(tmp_path / "unlimited"), str(v1)) is None
    assert cgroup_free_mb(str(tmp_path / "absent"), str(v1)) is None


def test_docreps_warnings_of_its_own_docstrings_are_not_in_a_jobs_log(tmp_path):
    """squidpy's import (cellcharter and banksy jobs) makes docrep warn of its docstrings' keys; a job's
    log keeps the other warnings only."""
    import warnings

    log = tmp_path / "train.log"
    sm = SimpleNamespace(log=[str(log)], wildcards=SimpleNamespace(sample="s1"))

    def step(_):
        warnings.warn_explicit("'n_jobs' is not a valid key!", SyntaxWarning, "decorators.py", 43,
                               module="docrep.decorators")
        warnings.warn_explicit("a warning of the run", UserWarning, "mine.py", 1, module="mine")

    logging.captureWarnings(False)          # as a job's process starts: warnings not yet sent to logging
    with warnings.catch_warnings():
        run_step(sm, step)
    logging.getLogger().handlers.clear()
    logging.captureWarnings(False)
    text = log.read_text()
    assert "a warning of the run" in text and "n_jobs" not in text, text
