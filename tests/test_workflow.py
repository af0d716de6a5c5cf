"""The whole DAG, run by Snakemake in a temporary folder on two tiny simulated slides."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import need_tcmalloc

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


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
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


def _jobs_to_rerun(workdir: Path, config: dict) -> set:
    """The steps a dry run would run for ``config`` on the finished run (Snakemake's job stats)."""
    changed = workdir / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    out = snakemake(workdir, "-n", "--quiet", "rules", "--configfile", str(changed)).stdout
    return {line.split()[0] for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit() and line.split()[0] not in ("total", "all")}


def test_a_configfile_that_lists_its_methods_runs_those_alone(tmp_path):
    """Snakemake merges a --configfile onto config.yaml key by key; the methods (and combinations,
    and simulated slides) a config lists are its own, not added to the demo's: a config of graphst
    alone plans no expression job (the settings' merge: test_plan.py)."""
    work = write_workdir(tmp_path / "w")
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"methods": {"graphst": {"model": "graphst"}}, "train": {"epochs": 7}}))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work), "--configfile", str(mine),
           "-n", "--printshellcmds"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    assert "method: graphst" in out or "method=graphst" in out
    assert "expression" not in out


def test_numbers_given_on_the_command_line_are_numbers(tmp_path):
    """snakemake reads the values inside --config train='{epochs: 7}' as text ('7'), which the schema
    refused as "'7' is not of type 'integer'"; they are read as the schema means them, and text that
    is no number is still refused by name."""
    work = write_workdir(tmp_path / "w")
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work), "-n", "--printshellcmds", "--config"]
    out = subprocess.run(cmd + ["train={epochs: 7, lr: 0.01}", "methods={graphst: {model: graphst}}"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    bad = subprocess.run(cmd + ["train={epochs: many}"], capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "train.epochs: 'many' is not of type 'integer'" in bad.stdout + bad.stderr


def test_a_setting_reruns_the_steps_that_use_it_only(finished_run):
    """Each rule takes only the settings its output depends on: a new graph k reruns the graph and
    what follows it, never qc or hvg; a clustering setting reruns the clustering, never training."""
    graph = _jobs_to_rerun(finished_run, TINY | {"graph": {"n_neighbors": 4}})
    assert {"graph", "train", "cluster", "evaluate", "export", "table"} <= graph and not graph & {"qc", "hvg"}
    cluster = _jobs_to_rerun(finished_run, TINY | {"cluster": {"n_init": 2, "n_pcs": 10}})
    assert "cluster" in cluster and not cluster & {"qc", "hvg", "graph", "train"}
    assert _jobs_to_rerun(finished_run, TINY) == set()
    # what changes no result reruns nothing: the training's log lines, a setting mclust does not read
    assert _jobs_to_rerun(finished_run, TINY | {"train": dict(TINY["train"], log_every=1)}) == set()
    assert _jobs_to_rerun(finished_run, TINY | {"cluster": {"n_init": 3}}) == set()
    # the truth column: the steps that read the annotation, not qc nor the training (were: qc onwards)
    (finished_run / "no_truth.tsv").write_text(SHEET.replace("\tdomain\n", "\t\n"))
    truth = _jobs_to_rerun(finished_run, TINY | {"samples": "no_truth.tsv"})
    assert "evaluate" in truth and not truth & {"qc", "hvg", "graph", "train", "cluster"}, truth


def test_a_changed_setting_the_slide_cannot_meet_is_named_by_the_step_that_reruns(finished_run, tmp_path):
    """qc, which no longer reruns for them, is not the only check: a k above the spots fails the
    graph step and a number of domains above the spots the cluster step, each naming the fix."""
    work = tmp_path / "run"
    shutil.copytree(finished_run, work, symlinks=True)
    (work / "big_k.yaml").write_text(yaml.safe_dump(TINY | {"graph": {"n_neighbors": 400}}))
    proc = snakemake(work, "--cores", "2", "--keep-going", "--configfile", str(work / "big_k.yaml"), check=False)
    assert proc.returncode != 0
    assert ("FAILED logs/graph/tiny_b.log: sample 'tiny_b': 250 spots, not more than the 400 graph neighbours. "
            "Fix: lower graph.n_neighbors or check the slide") in proc.stderr
    (work / "samples.tsv").write_text(SHEET.replace("tiny_b.h5ad\th5ad\t3", "tiny_b.h5ad\th5ad\t300"))
    proc = snakemake(work, "--cores", "2", "--keep-going", check=False)
    assert proc.returncode != 0 and "FAILED logs/cluster/tiny_b.graphst.seed0.log" in proc.stderr
    assert "n_clusters=300 is larger than the 250 spots after QC" in proc.stderr and "Fix: lower n_clusters" in proc.stderr
    assert "logs/qc/" not in proc.stderr
    # a truth column changed to one that is no annotation: refused by the steps that read it, before a score
    (work / "samples.tsv").write_text(SHEET.replace("\tdomain\n", "\tDomain\n"))
    proc = snakemake(work, "--cores", "2", "--keep-going", check=False)
    assert proc.returncode != 0 and "logs/qc/" not in proc.stderr and "logs/train/" not in proc.stderr
    assert ("FAILED logs/evaluate/tiny_a.graphst.seed0.log: sample 'tiny_a', file 'results/simulated/tiny_a.h5ad': "
            "truth column 'Domain' is not in obs ('domain' differs only in case or spaces; columns: ['domain']). "
            "Fix: set the sample sheet's truth column to 'domain'") in proc.stderr
    assert not (work / "results" / "tiny_a" / "graphst" / "seed0" / "metrics.tsv").exists()


def test_report_shows_each_domain_map_and_the_table_with_captions(finished_run):
    """`snakemake --report` after a normal run: every run's domain map and the results table,
    each with its caption."""
    proc = snakemake(finished_run, "--report", "report.html")
    html = (finished_run / "report.html").read_text()
    assert "Domain maps" in html and "Spatial domains of slide" in html and "One row per run" in html
    for sample in ("tiny_a", "tiny_b"):
        for method in ("graphst", "expression"):
            assert f"results/{sample}/{method}/seed0/domains.png" in html, proc.stderr[-2000:]
    assert "snakemake --report refused" not in proc.stderr


def test_a_report_of_results_another_config_made_is_refused(finished_run, tmp_path):
    """`snakemake --report` given another config than the run's (its clustering or training changed, a
    method or seed left out or added, the run not repeated) drew that run's results under this config's
    settings (the rules' params: `epochs: 30` beside maps trained 20 epochs; the table's rows of a
    method the config does not have), with a warning and exit status 0.  It is refused now, naming the
    config, the results folder and the fix, and writes no report; the run's own config draws it."""
    report = tmp_path / "report.html"
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(TINY | {"cluster": {"n_init": 2, "n_pcs": 10}}))
    proc = snakemake(finished_run, "--report", str(report), "--configfile", str(changed), check=False)
    assert proc.returncode != 0 and not report.exists(), proc.stderr[-2000:]
    assert (f"snakemake --report refused: the results in {finished_run / 'results'} were not made with this config "
            f"(--configfile {changed})") in proc.stderr, proc.stderr[-2000:]
    assert "(results/records/settings/cluster/" in proc.stderr
    assert "Fix: give --report the --configfile / --config of the run that made these results" in proc.stderr
    assert "or run this config first (snakemake --cores all" in proc.stderr
    changed.write_text(yaml.safe_dump(TINY | {"methods": {"graphst": {"model": "graphst"}}}))   # a method left out
    one_method = snakemake(finished_run, "--report", str(report), "--configfile", str(changed), check=False)
    assert one_method.returncode != 0 and not report.exists()
    assert "(results/records/settings/table/all.json does not hold" in one_method.stderr, one_method.stderr[-2000:]
    snakemake(finished_run, "--report", str(report))            # the run's own config: drawn
    assert report.stat().st_size > 0


def test_a_report_before_any_run_names_the_fix(tmp_path):
    """`snakemake --report` in a folder where no run has finished: Snakemake's own 'File
    results/table.tsv marked for report but does not exist' became one line naming the fix."""
    work = write_workdir(tmp_path / "w")
    proc = snakemake(work, "--report", "report.html", check=False)
    assert proc.returncode != 0 and not (work / "report.html").exists() and not (work / "results").exists()
    assert ("snakemake --report draws the report of a finished run, but results/table.tsv does not exist yet"
            in proc.stderr)
    assert "snakemake --cores all --report report.html --report-after-run" in proc.stderr


def test_jobs_use_glibc_unless_tcmalloc_is_chosen(finished_run, tmp_path):
    """rules/common.smk preloads tcmalloc into every job only with STCORE_MALLOC=tcmalloc; the
    train job's log says which allocator served it."""
    if os.environ.get("LD_PRELOAD") or os.environ.get("STCORE_MALLOC"):
        pytest.skip("this environment chooses its own allocator")
    log = (finished_run / "logs" / "train" / "tiny_a.graphst.seed0.log").read_text()
    assert "malloc glibc)" in log, log[-2000:]
    need_tcmalloc()
    w = write_workdir(tmp_path / "tc")
    snakemake(w, "--cores", "2", "results/tiny_a/graphst/seed0/train.npz",
              env=dict(os.environ, STCORE_MALLOC="tcmalloc"))
    log = (w / "logs" / "train" / "tiny_a.graphst.seed0.log").read_text()
    assert "malloc tcmalloc)" in log, log[-2000:]


def test_each_job_logs_its_peak_memory(finished_run):
    """Every stcore job ends its log with its own high-water mark (benchmarks read it: Snakemake's
    records sample memory every 30 s and can miss a short peak)."""
    import re

    for stage in ("qc", "hvg", "graph", "train", "cluster", "evaluate"):
        logs = sorted((finished_run / "logs" / stage).glob("*.log"))
        assert logs, stage
        for log in logs:
            peak = re.findall(r"peak memory (\d+) MB", log.read_text())
            assert peak and 50 < int(peak[-1]) < 8000, (log, peak)


def test_a_missing_allocator_library_is_one_clear_error(tmp_path):
    w = write_workdir(tmp_path / "w")
    env = dict(os.environ, STCORE_MALLOC=str(tmp_path / "libtcmalloc_minimal.so.4"))
    proc = snakemake(w, "--cores", "1", "-n", check=False, env=env)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "STCORE_MALLOC=" in said and "no tcmalloc library found" in said and "Fix:" in said, said[-2000:]
    assert not (w / "results").exists()


def test_a_method_can_run_on_some_slides_only(tmp_path):
    """A method's `samples:` keeps it to those slides (a peer that cannot run on one, say); the
    table then has no row for the others, and an unknown id is refused at parse time."""
    config = dict(TINY, methods={"graphst": {"model": "graphst"},
                                 "expression": {"model": "expression", "samples": ["tiny_a"]},
                                 "refined": {"train_from": "expression", "cluster": {"refine": True}}})
    w = write_workdir(tmp_path / "w", config)
    dry = snakemake(w, "--cores", "1", "-n").stdout
    assert "results/tiny_a/expression/seed0/train.npz" in dry and "results/tiny_a/refined/seed0/labels.tsv" in dry
    assert "tiny_b/expression" not in dry and "tiny_b/refined" not in dry
    assert "results/tiny_b/graphst/seed0/train.npz" in dry
    config["methods"]["expression"]["samples"] = ["nope"]
    w2 = write_workdir(tmp_path / "w2", config)
    proc = snakemake(w2, "--cores", "1", "-n", check=False)
    assert proc.returncode != 0 and "method 'expression': samples ['nope'] are not in the sample sheet" in proc.stdout + proc.stderr


def test_an_ensemble_combines_its_methods_labelings_at_each_seed(tmp_path):
    """config `ensembles`: one row per slide and seed with the consensus of its methods' labels
    at that seed, on the slides its methods share; an ensemble of an unknown method, or named
    like a method, is refused at parse time."""
    import numpy as np

    from stcore.consensus import consensus

    config = dict(TINY, seeds=[0, 1], consensus=False,
                  methods={"graphst": {"model": "graphst"}, "expression": {"model": "expression", "samples": ["tiny_a"]},
                           "latent": {"train_from": "graphst", "cluster": {"input": "embedding"}}},
                  ensembles={"all3": {"methods": ["graphst", "expression", "latent"]}})
    w = write_workdir(tmp_path / "w", config)
    snakemake(w, "--cores", "2")
    table = pd.read_csv(w / "results/table.tsv", sep="\t", dtype={"seed": str})
    rows = table[table["method"] == "all3"]
    assert sorted(zip(rows["sample"], rows["seed"])) == [("tiny_a", "0"), ("tiny_a", "1")]
    assert (rows["trained_by"] == "graphst+expression+latent").all() and rows["ARI"].between(-1, 1).all()
    for _, row in rows.iterrows():        # its cost: its members' runs on the same slide and seed together
        parts = table[(table["sample"] == row["sample"]) & (table["seed"] == row["seed"])
                      & table["method"].isin(["graphst", "expression", "latent"])]
        assert len(parts) == 3 and (parts["cpu_s"] > 0).all()
        assert row["cpu_s"] == pytest.approx(parts["cpu_s"].sum(), abs=1e-3) and row["peak_mb"] == parts["peak_mb"].max()
        assert row["seconds"] == pytest.approx(parts["seconds"].sum(), abs=1e-3)

    def labels(method, seed):
        return pd.read_csv(w / f"results/tiny_a/{method}/seed{seed}/labels.tsv", sep="\t", index_col="spot")["domain"]

    for seed in (0, 1):
        members = [labels(m, seed) for m in ("graphst", "expression", "latent")]
        combined = labels("all3", seed)
        assert list(combined.index) == list(members[0].index)
        assert np.array_equal(combined.to_numpy(), consensus([m.to_numpy() for m in members]))
    # its domains.h5ad: the combined domains, each method's own beside them, graphst's embedding
    import anndata as ad

    out = ad.read_h5ad(w / "results/tiny_a/all3/seed1/domains.h5ad")
    key = out.uns["stcore"]["key"]
    assert key == "stcore_domain"                       # the simulated slide's own 'domain' is its truth
    assert (out.obs[key].astype(str).to_numpy() == labels("all3", 1).loc[out.obs_names].astype(str).to_numpy()).all()
    assert list(out.obsm[f"{key}_methods"].columns) == ["graphst", "expression", "latent"]
    assert (out.obsm[f"{key}_methods"]["expression"].astype(str).to_numpy()
            == labels("expression", 1).loc[out.obs_names].astype(str).to_numpy()).all()
    assert out.uns["stcore"]["embedding_of"] == "graphst" and out.obsm["X_graphst"].shape[0] == out.n_obs
    assert "X_all3" not in out.obsm                     # the first member's embedding, under its own name
    assert dict(out.uns["stcore"]["n_clusters"]) == {"by": "given", "chosen": 3}    # the sheet's, for every member
    trained = out.uns["stcore"]["train"]                  # what each member's training read, by member
    assert sorted(trained) == ["expression", "graphst", "latent"] and trained["graphst"]["model"] == "graphst"
    assert trained["latent"]["model"] == "graphst" and int(trained["graphst"]["epochs"]) == TINY["train"]["epochs"]
    assert sorted(out.uns["stcore"]["cluster"]) == ["expression", "graphst", "latent"]
    assert out.uns["stcore"]["cluster"]["latent"]["input"] == "embedding"
    assert 0 <= out.uns["stcore"]["methods_ARI"] <= 1
    # consensus: true adds the slide's one answer: one vote of the consensus step over every member at both
    # seeds, its row costing every member's run at both seeds, its domains.h5ad with each seed's combination
    write_workdir(w, dict(config, consensus=True))
    snakemake(w, "--cores", "2")
    table = pd.read_csv(w / "results/table.tsv", sep="\t", dtype={"seed": str})
    one = table[(table["method"] == "all3") & (table["seed"] == "consensus")]
    assert list(one["sample"]) == ["tiny_a"] and list(one["consensus_of"]) == ["0,1"]
    answer = pd.read_csv(w / "results/tiny_a/all3/consensus/labels.tsv", sep="\t", index_col="spot")["domain"]
    every = [labels(m, s).to_numpy() for m in ("graphst", "expression", "latent") for s in (0, 1)]
    assert np.array_equal(answer.to_numpy(), consensus(every))
    parts = table[(table["sample"] == "tiny_a") & table["method"].isin(["graphst", "expression", "latent"])
                  & table["seed"].isin(["0", "1"])]
    assert len(parts) == 6 and one["cpu_s"].iloc[0] == pytest.approx(parts["cpu_s"].sum(), abs=1e-3)
    out = ad.read_h5ad(w / "results/tiny_a/all3/consensus/domains.h5ad")
    assert out.uns["stcore"]["seed"] == "consensus" and out.uns["stcore"]["trained_by"] == "graphst+expression+latent"
    assert (out.obs[key].astype(str).to_numpy() == answer.loc[out.obs_names].astype(str).to_numpy()).all()
    assert set(out.obsm) == {"spatial", "X_graphst", f"{key}_seeds"}
    assert (out.obsm[f"{key}_seeds"]["seed1"].astype(str).to_numpy()
            == labels("all3", 1).loc[out.obs_names].astype(str).to_numpy()).all()
    # every row records its provenance, a combination's as its runs' (versions, the training machine,
    # the slide's input_sha256; config_sha256 of all its runs' settings, so unlike any one run's)
    prov = ["stcore_version", "torch_version", "cpu_model", "config_sha256", "input_sha256"]
    assert table[prov].notna().all().all() and (table[prov].astype(str) != "").all().all(), table[["method", "seed"] + prov]
    for combined in (one, table[(table["method"] == "graphst") & (table["seed"] == "consensus")],
                     table[(table["method"] == "all3") & (table["seed"] == "0")]):
        runs = table[(table["sample"] == combined["sample"].iloc[0]) & table["seed"].isin(["0", "1"])
                     & table["method"].isin(["graphst", "expression", "latent"])]
        assert combined["input_sha256"].iloc[0] == runs["input_sha256"].iloc[0]
        assert combined["cpu_model"].iloc[0] == runs["cpu_model"].iloc[0]
        assert combined["config_sha256"].iloc[0] not in set(runs["config_sha256"])
    for bad, message in (({"x": {"methods": ["graphst", "nope"]}}, "ensemble 'x' names ['nope']"),
                         ({"latent": {"methods": ["graphst", "expression"]}}, "ensemble 'latent' is also a method")):
        w2 = write_workdir(tmp_path / f"bad{len(message)}", dict(config, ensembles=bad))
        proc = snakemake(w2, "--cores", "1", "-n", check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr


def test_auto_through_a_combination_records_every_choice_and_keeps_their_median(tmp_path):
    """n_clusters auto on the sheet with a combination of methods at two seeds: each run chooses its
    own number (n_clusters.json); the combinations' domains.h5ad record every run's choice by name,
    and the slide's one answer has the median of those numbers (the vote's reference)."""
    import json

    import anndata as ad

    config = dict(TINY, seeds=[0, 1], simulate={"tiny_a": TINY["simulate"]["tiny_a"]},
                  cluster=dict(TINY["cluster"], auto_range=[2, 5]),
                  methods={"graphst": {"model": "graphst"}, "expression": {"model": "expression"},
                           "latent": {"train_from": "graphst", "cluster": {"input": "embedding"}}},
                  ensembles={"all3": {"methods": ["graphst", "expression", "latent"]}})
    w = write_workdir(tmp_path / "w", config, "sample\tpath\tformat\tn_clusters\ttruth\n"
                                              "tiny_a\tresults/simulated/tiny_a.h5ad\th5ad\tauto\tdomain\n")
    snakemake(w, "--cores", "2")
    runs = [f"{m} seed {s}" for m in ("graphst", "expression", "latent") for s in (0, 1)]
    chosen = {run: json.loads((w / "results/tiny_a" / run.split()[0] / f"seed{run.split()[2]}" /
                               "n_clusters.json").read_text())["chosen"] for run in runs}
    one = ad.read_h5ad(w / "results/tiny_a/all3/consensus/domains.h5ad")
    record = one.uns["stcore"]["n_clusters"]
    assert record["by"] == "stability" and {k: int(v) for k, v in record["chosen_by_run"].items()} == chosen
    assert one.obs[one.uns["stcore"]["key"]].nunique() == sorted(chosen.values())[(len(chosen) - 1) // 2]
    at_seed = ad.read_h5ad(w / "results/tiny_a/all3/seed1/domains.h5ad").uns["stcore"]["n_clusters"]
    assert {k: int(v) for k, v in at_seed["chosen_by_run"].items()} == {r: chosen[r] for r in runs if r.endswith("1")}


def test_lint_is_clean():
    proc = subprocess.run([SNAKEMAKE, "--lint", "-s", str(REPO / "Snakefile"), "--directory", str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_domains_h5ad_opens_in_scanpy(finished_run):
    """Each run's domains.h5ad: raw counts of every gene QC kept, the domains, the embedding
    and the graph under squidpy's names; scanpy draws it (squidpy too, where installed)."""
    import anndata as ad
    import matplotlib
    import numpy as np
    import scanpy as sc
    import scipy.sparse as sp

    matplotlib.use("Agg")
    run = finished_run / "results" / "tiny_a" / "graphst" / "seed0"
    adata = ad.read_h5ad(run / "domains.h5ad")
    qc = ad.read_h5ad(finished_run / "results" / "tiny_a" / "qc.h5ad")
    assert adata.shape == qc.shape and list(adata.var_names) == list(qc.var_names)
    assert sp.issparse(adata.X) and (adata.X != qc.X).nnz == 0                   # raw counts, all genes
    labels = pd.read_csv(run / "labels.tsv", sep="\t", index_col="spot")["domain"].loc[adata.obs_names]
    key = adata.uns["stcore"]["key"]
    assert key == "stcore_domain" and "domain" in adata.obs          # the simulation's own truth column is kept
    assert isinstance(adata.obs[key].dtype, pd.CategoricalDtype)
    assert (adata.obs[key].astype(str).to_numpy() == labels.astype(str).to_numpy()).all()
    assert adata.obsm["X_graphst"].shape == (adata.n_obs, 64)
    conn, dist = adata.obsp["spatial_connectivities"], adata.obsp["spatial_distances"]
    assert (conn != conn.T).nnz == 0 and conn.nnz == dist.nnz and (dist.data > 0).all()
    assert adata.uns["spatial_neighbors"]["connectivities_key"] == "spatial_connectivities"
    assert adata.uns["stcore"]["method"] == "graphst" and adata.uns["stcore"]["seed"] == 0
    assert "ARI" in adata.uns["stcore"]["metrics"] and "torch_version" in adata.uns["stcore"]["metrics"]
    chosen = dict(adata.uns["stcore"]["n_clusters"])                  # the sample sheet's number, as given
    assert chosen["by"] == "given" and chosen["chosen"] == adata.uns["stcore"]["metrics"]["domains_found"]
    # the colours of its domains.png, kept for scanpy and squidpy: those stcore.pl.domains draws with the
    # annotation (the figure's, matched to it), which then keeps them as they are
    stored = list(adata.uns[f"{key}_colors"])
    assert len(stored) == adata.obs[key].cat.categories.size and len(adata.uns["domain_colors"]) >= 2
    from stcore.pl import domains as draw_domains

    draw_domains(adata, key=key, truth="domain", show=False)
    assert list(adata.uns[f"{key}_colors"]) == stored
    ax = sc.pl.spatial(adata, color=key, spot_size=1.0, show=False)
    assert ax is not None
    try:
        import squidpy as sq
    except ImportError:
        return
    sq.pl.spatial_scatter(adata, color=key, shape=None, size=5)
    assert np.isfinite(dist.data).all()


def test_api_gives_the_dag_labels(finished_run):
    """stcore.tl.domains on the QC'd slide, with the run's settings and seed, gives the
    workflow's labels exactly, and writes the documented keys."""
    import anndata as ad
    import numpy as np

    import stcore

    adata = ad.read_h5ad(finished_run / "results" / "tiny_a" / "qc.h5ad")
    stcore.gr.spatial_graph(adata, n_neighbors=3)
    assert "spatial_connectivities" in adata.obsp
    out = stcore.tl.domains(adata, n_clusters=3, seed=0, n_top_genes=TINY["hvg"]["n_top_genes"],
                            train=TINY["train"], cluster=TINY["cluster"], key_added="found", copy=True)
    assert "found" not in adata.obs                                             # copy=True leaves it alone
    dag = pd.read_csv(finished_run / "results" / "tiny_a" / "graphst" / "seed0" / "labels.tsv", sep="\t",
                      index_col="spot")["domain"].loc[out.obs_names]
    assert np.array_equal(out.obs["found"].astype(int).to_numpy(), dag.to_numpy())
    assert out.obsm["X_graphst"].shape == (out.n_obs, 64)
    assert out.uns["stcore"]["method"] == "graphst" and out.uns["stcore"]["seed"] == 0


def test_api_with_several_seeds_gives_their_consensus(finished_run):
    """Several seeds: each seed's labels are the single-seed call's (the DAG's for seed 0), the
    domains are their consensus (the DAG's consensus step), and the seeds' agreement is reported."""
    import anndata as ad
    import numpy as np

    import stcore
    from stcore.consensus import consensus
    from stcore.evaluate import ari

    adata = ad.read_h5ad(finished_run / "results" / "tiny_a" / "qc.h5ad")
    del adata.obs["domain"]         # the simulation's truth: tl.domains never writes over a column it did not write
    stcore.gr.spatial_graph(adata, n_neighbors=3)
    settings = {"n_clusters": 3, "n_top_genes": TINY["hvg"]["n_top_genes"], "train": TINY["train"],
                "cluster": TINY["cluster"], "copy": True}
    both = stcore.tl.domains(adata, seed=[0, 1], **settings)
    one = [stcore.tl.domains(adata, seed=s, **settings).obs["domain"].astype(int).to_numpy() for s in (0, 1)]
    seeds = both.obsm["domain_seeds"]
    assert list(seeds.columns) == ["seed0", "seed1"]
    for s in (0, 1):
        assert np.array_equal(seeds[f"seed{s}"].astype(int).to_numpy(), one[s])
    dag = pd.read_csv(finished_run / "results" / "tiny_a" / "graphst" / "seed0" / "labels.tsv", sep="\t",
                      index_col="spot")["domain"].loc[both.obs_names]
    assert np.array_equal(one[0], dag.to_numpy())
    assert np.array_equal(both.obs["domain"].astype(int).to_numpy(), consensus(one))
    assert both.uns["stcore"]["seed"] == "consensus" and both.uns["stcore"]["consensus_of"] == "0,1"
    assert both.uns["stcore"]["seed_ARI"] == ari(one[0], one[1])
    again = stcore.tl.domains(both, seed=0, **settings)                    # one seed: no stale per-seed labels
    assert "domain_seeds" not in again.obsm and np.array_equal(again.obs["domain"].astype(int).to_numpy(), one[0])
    with pytest.raises(ValueError, match="different seeds"):
        stcore.tl.domains(adata, seed=[0, 0], **settings)


def test_maps_of_a_slide_without_annotation_share_one_runs_colours(tmp_path):
    """A simulated slide whose truth column is left out of the sheet: each map drew its domains in the colours
    of its own numbers, so one region changed colour between maps.  Every map of the slide is matched to
    the reference run's (here, no combination: graphst's lowest seed; docs/results.md), each domains.h5ad
    keeping its map's colours: the spots two runs put together are in one colour in both."""
    import anndata as ad
    import numpy as np

    config = dict(TINY, simulate={"tiny_a": TINY["simulate"]["tiny_a"]})
    w = write_workdir(tmp_path / "w", config, "sample\tpath\tformat\tn_clusters\ttruth\n"
                                              "tiny_a\tresults/simulated/tiny_a.h5ad\th5ad\t3\t\n")
    snakemake(w, "--cores", "2")

    def spot_colours(method):
        a = ad.read_h5ad(w / f"results/tiny_a/{method}/seed0/domains.h5ad")
        key = a.uns["stcore"]["key"]
        colours = dict(zip(a.obs[key].cat.categories, a.uns[f"{key}_colors"]))
        return a.obs[key].astype(str).to_numpy(), np.array([colours[v] for v in a.obs[key].astype(str)])

    from itertools import permutations

    (ref, ref_col), (other, other_col) = spot_colours("graphst"), spot_colours("expression")
    # expression's domains take graphst's colours one to one, so that as many spots as any one-to-one pairing
    # of the two runs' domains allows are in one colour on both maps
    shared = pd.crosstab(other, ref).to_numpy()
    assert len(set(other_col)) == shared.shape[0] and set(other_col) <= set(ref_col)
    assert (other_col == ref_col).sum() == max(shared[range(len(p)), p].sum() for p in permutations(range(shared.shape[1])))
