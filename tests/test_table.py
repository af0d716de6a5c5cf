"""The results table: a combination's row takes its costs and what its members ran with from its members' rows."""
import pandas as pd
import pytest

from stcore.table import results_table


def _run(tmp_path, method, seed, members=None, **row):
    path = tmp_path / f"{method}.{seed}.tsv"
    pd.DataFrame([{"sample": "s", "method": method, "seed": seed, "trained_by": method, "ARI": 0.5} | row]).to_csv(
        path, sep="\t", index=False)
    record = tmp_path / f"{method}.{seed}.record.tsv"
    pd.DataFrame([{"s": 2.0, "cpu_time": 3.0, "max_rss": 100.0 + len(method)}]).to_csv(record, sep="\t", index=False)
    run = {"sample": "s", "method": method, "seed": seed, "metrics": str(path),
           "train_record": None if members else str(record), "cluster_record": None if members else str(record)}
    return run | ({"members": members} if members else {})


def test_a_combinations_row_lists_what_its_members_ran_with(tmp_path):
    runs = [_run(tmp_path, "graphst", 0, method_package="", blas="MKL 2024.2", cpu_kernels="AVX512"),
            _run(tmp_path, "banksy", 0, method_package="pybanksy 1.3.5", blas="openblas 0.3.30",
                 cpu_kernels="none (no torch)"),
            _run(tmp_path, "cellcharter", 0, method_package="cellcharter 0.3.7", blas="MKL 2024.2",
                 cpu_kernels="AVX512"),
            _run(tmp_path, "answer", 0, members=["graphst", "banksy", "cellcharter"], method_package="",
                 blas="MKL 2024.2", cpu_kernels="AVX512")]
    table = results_table(runs, [])
    row = table[table["method"] == "answer"].iloc[0]
    assert row["method_package"] == "pybanksy 1.3.5; cellcharter 0.3.7"
    assert row["blas"] == "MKL 2024.2; openblas 0.3.30" and row["cpu_kernels"] == "AVX512; none (no torch)"
    assert row["cpu_s"] == pytest.approx(18.0) and row["peak_mb"] == pytest.approx(100.0 + len("cellcharter"))
    assert table[table["method"] == "banksy"].iloc[0]["blas"] == "openblas 0.3.30"     # a member's own row as it was


def test_a_slide_without_an_annotation_is_not_said_to_lose_to_the_baseline():
    """A slide with an empty truth cell has no ARI: the summary's targets say it is not compared (was:
    'b: graphst n/a does NOT beat expression n/a', on the report's first page)."""
    from stcore.table import summary_markdown

    table = pd.DataFrame({"sample": ["a", "a", "b", "b"], "group": "", "method": ["graphst", "expression"] * 2,
                          "seed": [0, 0, 0, 0], "ARI": [0.5, 0.1, float("nan"), float("nan")]})
    text = summary_markdown(table, compare={"figure_method": "graphst", "baseline": "expression"})
    assert "- a: graphst 0.500 (n=1) beats expression 0.100 (n=1)." in text
    assert "- b: not compared (graphst n/a, expression n/a: no ARI without an annotation" in text
    assert "does NOT beat" not in text


def test_a_median_over_fewer_samples_says_over_how_many():
    """A method not run (or NaN) on a sample that the others were scored on has its median over fewer
    samples: the median row says '(2 of 3 samples)' (was: 0.500 beside 0.400, as if over the same samples)."""
    from stcore.table import summary_markdown

    rows = [("s1", "A", 0.8), ("s2", "A", 0.2), ("s1", "B", 0.5), ("s2", "B", 0.3), ("s3", "B", 0.4),
            ("s3", "C", float("nan")), ("s1", "C", 0.6), ("s2", "C", 0.1)]
    table = pd.DataFrame({"sample": [r[0] for r in rows], "group": "", "method": [r[1] for r in rows],
                          "seed": 0, "ARI": [r[2] for r in rows]})
    text = summary_markdown(table)
    assert "| **median over samples** | 0.500 (2 of 3 samples) | 0.400 | 0.350 (2 of 3 samples) |" in text


def test_a_target_decided_below_the_shown_digits_says_so():
    """'sim_regions: graphst 0.015 (n=1) beats expression 0.015 (n=1).' read as a contradiction: the
    means were 0.0148 and 0.0147."""
    from stcore.table import summary_markdown

    table = pd.DataFrame({"sample": ["a", "a"], "group": "", "method": ["graphst", "expression"],
                          "seed": [0, 0], "ARI": [0.0148, 0.0147]})
    text = summary_markdown(table, compare={"figure_method": "graphst", "baseline": "expression"})
    assert ("- a: graphst 0.015 (n=1) beats expression 0.015 (n=1) (by less than 0.001: 0.0148 vs 0.0147)."
            in text), text


def test_a_combinations_costs_on_a_slide_and_on_its_group_are_each_their_own(tmp_path):
    """A combination run on slide s1 alone and on its group g (s1, s2): its rows on s1 alone summed its
    members' runs alone and in the group (both rows of sample s1), and its group's rows matched no row
    (their sample is the slide's, not the group's): 'n/a' seconds."""
    def run(unit, method, seed, slides, seconds, members=None):
        path = tmp_path / f"{unit}.{method}.{seed}.tsv"
        group = unit if len(slides) > 1 else ""
        pd.DataFrame([{"sample": s, "group": group, "method": method, "seed": seed,
                       "trained_by": "+".join(members) if members else method, "ARI": 0.5} for s in slides]).to_csv(
            path, sep="\t", index=False)
        record = tmp_path / f"{unit}.{method}.{seed}.record.tsv"
        pd.DataFrame([{"s": seconds / 2, "cpu_time": seconds, "max_rss": 10.0 * seconds}]).to_csv(
            record, sep="\t", index=False)
        out = {"sample": unit, "group": group, "method": method, "seed": seed, "metrics": str(path),
               "train_record": None if members else str(record), "cluster_record": None if members else str(record)}
        return out | ({"members": members} if members else {})

    runs = [run("s1", "a", 0, ["s1"], 2.0), run("s1", "b", 0, ["s1"], 4.0),
            run("g", "a", 0, ["s1", "s2"], 20.0), run("g", "b", 0, ["s1", "s2"], 40.0),
            run("s1", "e", 0, ["s1"], 0, members=["a", "b"]), run("g", "e", 0, ["s1", "s2"], 0, members=["a", "b"])]
    table = results_table(runs, [])
    e = table[table["method"] == "e"].set_index(["sample", "group"])
    assert e.loc[("s1", ""), "seconds"] == pytest.approx(6.0) and e.loc[("s1", ""), "peak_mb"] == pytest.approx(40.0)
    assert e.loc[("s1", "g"), "seconds"] == pytest.approx(60.0) and e.loc[("s2", "g"), "seconds"] == pytest.approx(60.0)
    assert e.loc[("s2", "g"), "cpu_s"] == pytest.approx(120.0) and e.loc[("s2", "g"), "peak_mb"] == pytest.approx(400.0)


def test_a_dlpfc_slide_without_an_annotation_is_not_said_to_miss_the_reference():
    """A slide named as a DLPFC slice of the reference numbers, run without an annotation: the targets said
    '151673: graphst mean ARI nan vs reference package 0.600 -> NOT met; seed sd nan (n=0) ...'."""
    import numpy as np

    from stcore.table import summary_markdown

    table = pd.DataFrame({"sample": ["151673"] * 2, "group": "", "method": ["graphst"] * 2, "seed": [0, 1],
                          "ARI": [np.nan, np.nan]})
    text = summary_markdown(table, compare={"figure_method": "graphst"},
                            reference_here={"151673": {"mean": 0.6, "sd": 0.02, "n": 3, "seeds": ["0", "1", "2"]}})
    assert ("- 151673: not compared with the reference package (graphst n/a: no ARI without an annotation, the "
            "sample sheet's truth column).") in text
    assert "NOT met" not in text and "nan" not in text


def test_the_claim_is_not_judged_without_an_annotation():
    """The claim's F1 change needs an annotation: on slides without one it said 'median F1 change over samples
    +nan% ... F1 change in [-5, 5]%: does not hold', and each row's change '+nan'."""
    import warnings

    import numpy as np

    from stcore.table import summary_markdown

    table = pd.DataFrame({"sample": ["a", "a", "b", "b"], "group": "", "seed": 0,
                          "method": ["graphst", "recon_only"] * 2, "ARI": np.nan, "F1": np.nan,
                          "recon_r": [0.8, 0.7, 0.85, 0.75]})
    compare = {"figure_method": "graphst", "ablation": "recon_only",
               "claim": {"text": "contrast helps", "f1_change_pct": [-5, 5], "recon_r_min": 0.5}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # numpy's 'All-NaN slice encountered'
        text = summary_markdown(table, compare=compare)
    assert "nan" not in text and "F1 change in [-5, 5]%: does not hold" not in text
    assert ("Measured: no sample has an F1 (an annotation is needed): the F1 change is not measured; lowest "
            "per-sample mean r of graphst 0.800. r > 0.5: holds.") in text
    table["F1"] = [0.50, 0.40, 0.60, 0.60]          # annotated: measured as before
    text = summary_markdown(table, compare=compare)
    assert "median F1 change over samples +12.5% (range +0.0% to +25.0%)" in text and "does not hold; r > 0.5: holds" in text


def test_counts_are_written_as_whole_numbers_where_some_rows_have_none(tmp_path):
    """genes, n_labelled, ... of a consensus row (none of its own) or an unannotated slide are empty, so
    pandas holds the column as floats: written as 289, not 289.0000; scores keep their 4 decimals."""
    from stcore.table import write_table

    table = pd.DataFrame({"sample": ["a", "a"], "method": "graphst", "seed": [0, "consensus"],
                          "genes": [289, float("nan")], "n_labelled": [59, float("nan")], "ARI": [0.5, 1 / 3]})
    write_table(table, tmp_path / "t.tsv")
    lines = (tmp_path / "t.tsv").read_text().splitlines()
    assert lines[1:] == ["a\tgraphst\t0\t289\t59\t0.5000", "a\tgraphst\tconsensus\t\t\t0.3333"]


def test_a_seed_sd_of_one_seed_is_said_to_be_unmeasured():
    """A DLPFC slide run at one seed (the demo's seeds: [0]): the targets said 'seed sd nan (n=1) > (or one
    seed) 0.02: NOT met.', a NaN in the summary and a verdict on an sd no run measured."""
    from stcore.table import summary_markdown

    table = pd.DataFrame({"sample": ["151673"], "group": "", "method": ["graphst"], "seed": [0], "ARI": [0.62]})
    text = summary_markdown(table, compare={"figure_method": "graphst", "sd_target": 0.02},
                            reference_here={"151673": {"mean": 0.6, "sd": 0.02, "n": 3, "seeds": ["0", "1", "2"]}})
    line = next(x for x in text.splitlines() if x.startswith("- 151673:"))
    assert line == ("- 151673: graphst mean ARI 0.620 vs reference package 0.600 -> met; seed sd not measured "
                    "(one seed; the target of 0.02 needs two or more)."), line
    assert "nan" not in text


def test_a_methods_consensus_of_its_seeds_costs_its_seeds_runs(tmp_path):
    """The row of 'graphst (consensus)' had no seconds, CPU seconds or peak memory: 'n/a' in the summary's
    cost tables, beside a combination's consensus, which counts its members' runs."""
    from stcore.plan.runs import Plan
    from stcore.plan.sheet import slides_and_groups
    from stcore.registry import METHODS
    from stcore.table import summary_markdown

    rows = [{"sample": "s", "path": "s.h5ad", "format": "h5ad", "n_clusters": 7, "truth": "layer", "values": "counts",
             "group": ""}]
    slides, groups = slides_and_groups(rows, "sheet.tsv")
    config = {"methods": {"graphst": {"model": "graphst"}}, "seeds": [0, 1], "consensus": True,
              "train": {"device": "auto", "epochs": 600, "n_latent": 64}, "graph": {"mode": "knn"},
              "cluster": {"algorithm": "mclust", "auto_range": [2, 15], "subset": 2000}, "compare": {}}
    runs = Plan(config, slides, groups, METHODS).table_runs()
    assert [r["seed"] for r in runs] == [0, 1, "consensus"]
    for run in runs:        # the files the table reads, where the plan puts them, under tmp_path
        seed = run["seed"]
        for key in ("metrics", "train_record", "cluster_record"):
            if run[key]:
                run[key] = str(tmp_path / run[key])
                (tmp_path / run[key]).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([{"sample": "s", "method": "graphst", "seed": seed, "trained_by": "graphst", "ARI": 0.5}]).to_csv(
            run["metrics"], sep="\t", index=False)
        for key, s in (("train_record", 10.0), ("cluster_record", 1.0)):
            if run[key]:
                pd.DataFrame([{"s": s * (1 + seed), "cpu_time": s, "max_rss": 100.0 * (1 + seed)}]).to_csv(
                    run[key], sep="\t", index=False)
    table = results_table(runs, [])
    answer = table[table["seed"].astype(str) == "consensus"].iloc[0]
    assert answer["seconds"] == pytest.approx(11.0 + 22.0) and answer["cpu_s"] == pytest.approx(22.0)
    assert answer["peak_mb"] == pytest.approx(200.0)
    text = summary_markdown(table)
    seconds = text.split("## Seconds per run")[1].split("\n## ")[0]
    assert "| s | 16.5 ± 7.8 | 33.0 |" in seconds and "n/a" not in seconds


def test_the_targets_say_they_are_the_graph_models_alone_beside_other_methods():
    """A run of the recommended answer on a slide named as a DLPFC slice of the reference numbers: the
    summary ended on '## Targets' with '151673: graphst mean ARI 0.506 vs reference package 0.580 -> NOT met'
    and nothing saying that verdict is on graphst alone, not on the answer (recommended (consensus))."""
    from stcore.table import summary_markdown

    table = pd.DataFrame({"sample": ["151673"] * 4, "group": "", "seed": [0, 1, 0, 1],
                          "method": ["graphst", "graphst", "recommended", "recommended"],
                          "ARI": [0.50, 0.52, 0.61, 0.62]})
    reference = {"151673": {"mean": 0.58, "sd": 0.015, "n": 3, "seeds": ["0", "1", "2"]}}
    text = summary_markdown(table, compare={"figure_method": "graphst"}, reference_here=reference)
    targets = text.split("## Targets", 1)[1]
    assert ("The development targets of graphst alone (config `compare`: figure_method, baseline, sd_target), "
            "not verdicts on recommended: their scores are in the tables above.") in targets
    assert "graphst (this pipeline's graph model)" in text
    # the demo's graph model and baseline only: no such line
    alone = summary_markdown(table[table["method"] == "graphst"], compare={"figure_method": "graphst"},
                             reference_here=reference)
    assert "development targets" not in alone


def test_a_combinations_columns_come_first():
    """The recommended answer's columns (a combination of methods, config `ensembles`) came last of eight
    method columns, so a page narrower than the table hid the answer; they come first, before their
    members', in every table of the summary."""
    from stcore.table import summary_markdown

    rows = []
    for m, by in [("graphst", "graphst"), ("banksy", "banksy"), ("recommended", "graphst+banksy")]:
        rows += [(m, seed, by, 0.5 + 0.01 * i) for i, seed in enumerate(["0", "1", "consensus"])]
    table = pd.DataFrame(rows, columns=["method", "seed", "trained_by", "ARI"]).assign(sample="s1", group="",
                                                                                        NMI=0.6)
    text = summary_markdown(table)
    # the answer (its vote over the seeds) first, then each seed's vote: test_the_summary_names_the_answer...
    head = ("| sample | recommended (consensus) | recommended | graphst | graphst (consensus) | banksy | "
            "banksy (consensus) |")
    assert text.count(head) == 2                        # the ARI and NMI tables
    assert "Seeds per method: recommended 2, graphst 2, banksy 2." in text
    # without a combination, the config's order as before
    alone = summary_markdown(table[table["method"] != "recommended"])
    assert "| sample | graphst | graphst (consensus) | banksy | banksy (consensus) |" in alone


def test_the_summary_names_the_answer_and_shows_it_first():
    """A run of config/recommended.yaml (STARmap and osmFISH, 3 seeds): the summary's ARI table began
    'recommended | recommended (consensus)', 0.854 ± 0.004 then 0.858 on STARmap, and no line said which
    column is the slide's answer; the report's map beside it, 'the slide's answer', read ARI 0.858. The
    answer's column comes first, named by a sentence before the tables with its file; without a vote over
    the seeds (one seed), the per-seed column is named."""
    from stcore.table import summary_markdown

    rows = []
    for m, by in [("graphst", "graphst"), ("banksy", "banksy"), ("recommended", "graphst+banksy")]:
        rows += [(m, seed, by, 0.5 + 0.01 * i) for i, seed in enumerate(["0", "1", "2", "consensus"])]
    table = pd.DataFrame(rows, columns=["method", "seed", "trained_by", "ARI"]).assign(sample="s1", group="")
    text = summary_markdown(table)
    intro = text.split("## ", 1)[0]
    assert ("**The answer for each sample is the column `recommended (consensus)`**: one vote over graphst, banksy "
            "at every seed (`results/<sample>/recommended/consensus/domains.h5ad`") in intro
    assert "The column `recommended` is each seed's own vote" in intro
    ari = text.split("## ARI against the manual annotation", 1)[1].split("\n## ", 1)[0]
    assert "| sample | recommended (consensus) | recommended | graphst | graphst (consensus) |" in ari
    assert "| s1 | 0.530 (n=1) | 0.510 ± 0.010 (n=3) |" in ari
    # one seed: no vote over the seeds, the seed's own vote is the answer
    one = summary_markdown(table[table["seed"] == "0"])
    assert ("**The answer for each sample is the column `recommended`**: the vote over graphst, banksy at each "
            "seed (`results/<sample>/recommended/seed<seed>/domains.h5ad`") in one
    assert "| sample | recommended | graphst | banksy |" in one
    # no combination (the demo's config): no such line
    assert "The answer for each sample" not in summary_markdown(table[table["method"] != "recommended"])
