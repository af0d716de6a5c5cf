"""The comparison configuration (studies/compare.yaml) end to end on a small subset of the
real slides: one DLPFC slide, a few epochs, two seeds, three methods (one of them
clustering another's trained model).  Checks the results table's shape and that every number
is finite and in range, and that the summary and figures are written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import need_r

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STCORE_DATA", REPO.parent / "shared" / "data"))
REFERENCE = DATA.parent / "reference"
SLIDE = "151510"

pytestmark = pytest.mark.slow


def _snakemake() -> list[str]:
    exe = Path(sys.executable).with_name("snakemake")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="module")
def small_compare(tmp_path_factory):
    if not (DATA / "DLPFC" / f"{SLIDE}.h5ad").is_file():
        pytest.skip(f"shared data not found at {DATA} (DLPFC/{SLIDE}.h5ad); set STCORE_DATA to the data folder")
    work = tmp_path_factory.mktemp("bench")
    config = yaml.safe_load((REPO / "studies" / "compare.yaml").read_text())
    sheet = pd.read_csv(REPO / config["samples"], sep="\t", dtype=str)
    sheet[sheet["sample"] == SLIDE].to_csv(work / "samples.tsv", sep="\t", index=False)
    config |= {"data_dir": str(DATA), "samples": str(work / "samples.tsv"), "seeds": [0, 1]}
    config["train"] |= {"epochs": 5, "log_every": 0}
    config["cluster"] |= {"n_init": 3}
    config["methods"] = {m: config["methods"][m] for m in ("graphst", "expression", "embedding")}
    config["compare"] |= {"reference_dir": str(REFERENCE), "r_mclust": False}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = _snakemake() + ["--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
                          "--configfile", str(work / "config.yaml"), "--cores", "2", "compare"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def test_table_shape_and_ranges(small_compare):
    table = pd.read_csv(small_compare / "results" / "table.tsv", sep="\t", dtype={"sample": str, "seed": str})
    assert list(table.columns[:5]) == ["sample", "group", "method", "seed", "trained_by"]
    assert {"ARI", "NMI", "AMI", "F1", "recon_r", "prep_s", "train_s", "cluster_s", "seconds", "peak_mb",
            "cpu_model", "mkl_cnr", "input_sha256"} <= set(table.columns)
    # One row per seed, and one for the consensus of each method's two seeds.
    together = table[table["seed"] == "consensus"]
    assert len(together) == 3 and together["ARI"].between(-1, 1).all()
    table = table[table["seed"] != "consensus"].astype({"seed": int})
    # a consensus costs its seeds' runs, together
    seeds = table.groupby("method")[["seconds", "cpu_s"]].sum()
    for _, row in together.iterrows():
        assert row["seconds"] == pytest.approx(seeds.loc[row["method"], "seconds"], abs=1e-3)
        assert row["cpu_s"] == pytest.approx(seeds.loc[row["method"], "cpu_s"], abs=1e-3)
    assert len(table) == 1 * 3 * 2
    assert set(table["method"]) == {"graphst", "expression", "embedding"}
    assert sorted(table["seed"].unique()) == [0, 1]
    assert set(table["sample"]) == {SLIDE}
    assert (table.loc[table["method"] == "embedding", "trained_by"] == "graphst").all()
    for col in ("ARI", "AMI"):
        assert table[col].between(-1, 1).all(), col
    for col in ("NMI", "F1"):
        assert table[col].between(0, 1).all(), col
    graph = table[table["method"] != "expression"]
    assert graph["recon_r"].between(-1, 1).all()
    assert table.loc[table["method"] == "expression", "recon_r"].isna().all()   # no decoder
    assert (table["seconds"] > 0).all() and table["seconds"].notna().all()
    assert (table["peak_mb"] > 0).all()
    # The embedding method reuses graphst's trained model: same training time per seed.
    t = table.set_index(["method", "seed"])["train_s"]
    assert t.loc[("embedding", 0)] == t.loc[("graphst", 0)]


def test_summary_and_figures(small_compare):
    out = small_compare / "results" / "compare"
    text = (small_compare / "results" / "summary.md").read_text()
    assert "median over samples" in text and "## Seed stability" in text
    assert SLIDE in text
    if REFERENCE.is_dir():
        assert "reference GraphST package on these files" in text
        assert "0.297" in text                 # the reference package's single-seed score on 151510
        assert "[Long et al. 2023 Nat Commun]" in text
    figures = out / "figures"
    for name in ("ari_boxplot", f"domains_{SLIDE}", f"umap_{SLIDE}", f"losses_{SLIDE}"):
        png = figures / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    agreement = pd.read_csv(out / "agreement.tsv", sep="\t")
    assert len(agreement) == 2
    assert agreement["status"].str.startswith("skipped: switched off").all()


def test_r_mclust_agreement():
    """R's mclust EEE and the R-free clusterings agree on well separated blobs (needs R)."""
    import numpy as np

    from stcore.agreement import AGREEMENT_COLUMNS, agreement_row

    need_r()
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(c, 0.5, (60, 3)) for c in (0, 4, 8)])
    truth = np.repeat(["a", "b", "c"], 60)
    row = agreement_row(x, truth, 3, seed=0)
    assert set(row) == set(AGREEMENT_COLUMNS)
    assert all(v == pytest.approx(1.0) for v in row.values()), row
