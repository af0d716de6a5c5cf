"""The whole DAG, run by Snakemake in a temporary folder on two tiny simulated slides."""
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"

TINY = {
    "samples": "samples.tsv",
    "seeds": [0],
    "simulate": {
        "tiny_a": {"n_spots": 300, "n_genes": 200, "markers_per_domain": 30, "n_layers": 3, "n_regions": 0,
                   "seed": 1},
        "tiny_b": {"n_spots": 250, "n_genes": 200, "markers_per_domain": 30, "layout": "scatter",
                   "n_layers": 2, "n_regions": 1, "seed": 2},
    },
    "hvg": {"n_top_genes": 150},
    "train": {"epochs": 20, "log_every": 5},
    "cluster": {"n_init": 2},
    "methods": {"graphst": {"model": "graphst"}, "expression": {"model": "expression"}},
}
SHEET = ("sample\tpath\tformat\tn_clusters\ttruth\n"
         "tiny_a\tresults/simulated/tiny_a.h5ad\th5ad\t3\tdomain\n"
         "tiny_b\tresults/simulated/tiny_b.h5ad\th5ad\t3\tdomain\n")


def write_workdir(path: Path, config: dict = TINY, sheet: str = SHEET) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "samples.tsv").write_text(sheet)
    return path


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = write_workdir(tmp_path_factory.mktemp("run"))
    snakemake(workdir, "--cores", "2")
    return workdir


def test_every_output_is_produced(finished_run):
    w = finished_run
    for sample in ("tiny_a", "tiny_b"):
        for name in ("qc.h5ad", "qc.json", "hvg.h5ad", "graph.npz", "graph.json"):
            assert (w / "results" / sample / name).stat().st_size > 0
        for method in ("graphst", "expression"):
            run = w / "results" / sample / method / "seed0"
            for name in ("train.npz", "losses.tsv", "labels.tsv", "metrics.tsv", "domains.png"):
                assert (run / name).stat().st_size > 0, run / name
            assert (w / "logs" / "train" / f"{sample}.{method}.seed0.log").exists()
    summary = (w / "results" / "summary.md").read_text()
    assert "| tiny_a |" in summary and "| tiny_b |" in summary


def test_results_table_has_a_row_per_slide_and_method(finished_run):
    table = pd.read_csv(finished_run / "results" / "table.tsv", sep="\t")
    assert len(table) == 4
    assert set(table["method"]) == {"graphst", "expression"}
    assert set(table["sample"]) == {"tiny_a", "tiny_b"}
    for col in ("spots", "genes", "ARI", "NMI", "prep_s", "train_s", "cluster_s", "seconds", "peak_mb"):
        assert table[col].notna().all(), col
    assert table.loc[table["method"] == "graphst", "recon_r"].between(-1, 1).all()
    assert table.loc[table["method"] == "expression", "recon_r"].isna().all()     # no decoder
    assert table["ARI"].between(-1, 1).all() and table["NMI"].between(0, 1).all()
    assert (table["seconds"] > 0).all()
    assert (table["genes"] == 150).all()
    losses = pd.read_csv(finished_run / "results" / "tiny_a" / "graphst" / "seed0" / "losses.tsv", sep="\t")
    assert len(losses) == 20


def test_a_second_run_has_nothing_to_do(finished_run):
    proc = snakemake(finished_run, "--cores", "2", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = subprocess.run([SNAKEMAKE, "--lint", "-s", str(REPO / "Snakefile"), "--directory", str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr
