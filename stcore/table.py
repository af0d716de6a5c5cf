"""The one results table over slides, methods and seeds, and its written summary.

- ``results_table``: one row per (sample, method, seed), and for a group of slides trained as
  one (``group``) one row per slide of the group's run: the evaluate step's ``metrics.tsv``
  (every quality metric, the reconstruction's Pearson r, provenance) joined with Snakemake's
  time and memory records: ``prep_s`` (qc + hvg + graph of the slide, shared by its runs),
  ``train_s``, ``cluster_s``, ``seconds`` (= train_s + cluster_s, the run's own time; a method
  with ``train_from`` counts the training it reuses), ``cpu_s`` (the CPU seconds of the same
  jobs: on a loaded machine wall seconds grow, CPU seconds much less) and ``peak_mb`` (the larger
  max_rss of its train and cluster jobs).  A combination of methods (config ``ensembles``; its
  run lists its ``members``) costs its members' runs on the same slide and seed together: their
  seconds and CPU seconds added, the largest peak (a member that clusters another member's
  training, ``train_from``, counts that training again: an upper bound); the consensus of its
  seeds costs its members' runs at all those seeds, and a method's consensus of its seeds costs
  its seeds' runs (its run lists the method as its one member).  It reads no h5ad and no npz.
- ``seed_agreement``: mean pairwise ARI between a (sample, method)'s seeds' labelings.
- ``read_published`` / ``read_reference_here``: published per-slice DLPFC ARI and the
  reference GraphST package's scores on the same files, from ``reference_dir``.
- ``summary_markdown``: the wide summary of the table (per sample mean ± sd over seeds, per
  method the median over samples of those means, never the best seed); with published
  numbers, targets, the paper's claim and the R agreement where the config asks for them.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .io import read_tsv

__all__ = ["results_table", "seed_agreement", "shown_method", "read_published", "read_reference_here",
           "per_slide_stats", "format_mean_sd", "mean_sd", "summary_markdown", "SUMMARY_METRICS"]

# Metrics shown side by side in the summary, when the table has them (lower is better for
# CHAOS, PAS, seconds and peak MB).
SUMMARY_METRICS = ["ARI", "NMI", "CHAOS", "PAS", "seconds", "cpu_s", "peak_mb"]


def _record(path: str | None, column: str) -> float:
    if not path or not Path(path).is_file():
        return float("nan")
    values = pd.to_numeric(pd.read_csv(path, sep="\t")[column], errors="coerce")
    return float(values.iloc[0]) if len(values) else float("nan")


# Provenance that a combination's members may each have their own of: the row lists each value once.
MEMBER_TEXT = ("method_package", "cpu_kernels", "blas")


def _from_members(table: pd.DataFrame, run: dict) -> None:
    """The costs of a combination's rows: its members' runs on the same slide and seed, together
    (its one answer over seeds: at every seed it combines, ``member_seeds``); and what its members
    ran with (:data:`MEMBER_TEXT`), each value once in the members' order, joined by '; '.  A run of a
    group (``run['group']``) has a row per slide, each with its group's: its members' rows of that slide
    in the group; a slide's run alone, the rows of that slide outside any group."""
    group = table["group"].fillna("").astype(str) if "group" in table else pd.Series("", index=table.index)
    unit = str(run["sample"])
    of_unit = (group == unit) if run.get("group") else ((table["sample"].astype(str) == unit) & (group == ""))
    mine = of_unit & (table["method"] == run["method"]) & (table["seed"].astype(str) == str(run["seed"]))
    seeds = [str(s) for s in run.get("member_seeds", [run["seed"]])]
    members = of_unit & table["method"].isin(run["members"]) & table["seed"].astype(str).isin(seeds)
    for column in MEMBER_TEXT:
        if column in table:
            table[column] = table[column].astype(object)
    for slide in dict.fromkeys(table.loc[mine, "sample"].astype(str)):
        on = table["sample"].astype(str) == slide
        rows, parts = mine & on, table[members & on]
        for column in ("train_s", "cluster_s", "seconds", "cpu_s"):
            table.loc[rows, column] = parts[column].sum(min_count=1)
        table.loc[rows, "peak_mb"] = parts["peak_mb"].max()
        for column in MEMBER_TEXT:
            if column in table:
                values = [str(v) for v in parts[column] if isinstance(v, str) and v.strip()]
                table.loc[rows, column] = "; ".join(dict.fromkeys(values))


# Columns of the results table that count something (spots, genes, domains): written as whole numbers.
COUNT_COLUMNS = ("spots", "genes", "domains_found", "n_labelled", "n_unlabelled")


def write_table(table: pd.DataFrame, path) -> None:
    """``table`` as results/table.tsv: numbers to 4 decimals, the counts (:data:`COUNT_COLUMNS`) as
    whole numbers where some rows have none (a consensus has no genes of its own; a slide without an
    annotation no labelled spots), which pandas holds as floats."""
    counts = {c: "Int64" for c in COUNT_COLUMNS if c in table and pd.api.types.is_numeric_dtype(table[c])
              and (table[c].dropna() == table[c].dropna().round()).all()}
    table.astype(counts).to_csv(path, sep="\t", index=False, float_format="%.4f")


def results_table(runs: list[dict], prep_records: list[str]) -> pd.DataFrame:
    """One row per run, in the order of ``runs``.  Each run is a dict with ``metrics`` (the evaluate step's table),
    ``train_record`` and ``cluster_record`` (Snakemake's records of the jobs that made it);
    ``prep_records`` are the records of qc, hvg and graph, named ``<stage>/<sample>.tsv``."""
    prep: dict[str, float] = {}
    for f in prep_records:
        sample = Path(f).stem
        prep[sample] = prep.get(sample, 0.0) + _record(f, "s")
    rows = []
    for run in runs:
        train_s, cluster_s = _record(run["train_record"], "s"), _record(run["cluster_record"], "s")
        cpu_s = _record(run["train_record"], "cpu_time") + _record(run["cluster_record"], "cpu_time")
        peak = np.nanmax([_record(run["train_record"], "max_rss"), _record(run["cluster_record"], "max_rss"),
                          np.nan, -np.inf])
        for row in read_tsv(run["metrics"]).to_dict("records"):    # a group's run: one row per slide
            rows.append(row | {"prep_s": prep.get(str(run["sample"]), float("nan")), "train_s": train_s,
                               "cluster_s": cluster_s, "seconds": train_s + cluster_s, "cpu_s": cpu_s,
                               "peak_mb": peak if np.isfinite(peak) else np.nan})
    table = pd.DataFrame(rows)
    for run in (r for r in runs if r.get("members")):
        _from_members(table, run)
    if "group" not in table:
        table["group"] = ""
    table["group"] = table["group"].fillna("")
    first = ["sample", "group", "method", "seed", "trained_by"]
    table = table[first + [c for c in table.columns if c not in first]]
    return table.reset_index(drop=True)     # in the order of ``runs`` (the config's order of methods)


def shown_method(method: str, group: str = "", seed="") -> str:
    """The name a run's method goes by in the summary: ``<method> (joint)`` for a group's run,
    so a slide's row shows it trained alone and trained with its group side by side;
    ``(consensus)`` for the consensus of the seeds."""
    return method + (" (joint)" if group else "") + (" (consensus)" if str(seed) == "consensus" else "")


def format_mean_sd(mean: float, sd: float = float("nan"), n: int = 1) -> str:
    """'0.512 ± 0.021 (n=5)'; one value: '0.512 (n=1)'; no value: 'n/a'."""
    if not np.isfinite(mean):
        return "n/a"
    if n > 1 and np.isfinite(sd):
        return f"{mean:.3f} ± {sd:.3f} (n={int(n)})"
    return f"{mean:.3f} (n={int(n)})"


def mean_sd(values: pd.Series) -> str:
    """``format_mean_sd`` of the non-missing values."""
    v = values.dropna()
    return format_mean_sd(v.mean(), v.std(ddof=1), len(v)) if len(v) else "n/a"


def seed_agreement(runs: list[dict]) -> pd.DataFrame:
    """Mean pairwise ARI between the labelings of a (sample, method)'s seeds: 1 when every
    seed gives the same domains.  Runs carry ``sample``, ``method`` and ``labels`` (the
    cluster step's labels.tsv).  Columns sample, method, pairs, seed_ARI."""
    from .evaluate import mean_pairwise_ari

    groups: dict[tuple[str, str], list[np.ndarray]] = {}
    for run in runs:
        if str(run["seed"]) == "consensus":       # a combination of the seeds, not one of them
            continue
        lab = read_tsv(run["labels"]).sort_values("spot")
        if "slide" in lab:      # a group's run: agreement per slide, under the method's joint name
            for slide, part in lab.groupby("slide", sort=False):
                groups.setdefault((str(slide), shown_method(run["method"], run["sample"])), []).append(
                    part["domain"].to_numpy())
        else:
            groups.setdefault((str(run["sample"]), run["method"]), []).append(lab["domain"].to_numpy())
    rows = []
    for (sample, method), labs in groups.items():
        rows.append({"sample": sample, "method": method, "pairs": len(labs) * (len(labs) - 1) // 2,
                     "seed_ARI": mean_pairwise_ari(labs)})
    return pd.DataFrame(rows, columns=["sample", "method", "pairs", "seed_ARI"])


def read_published(path: str | Path) -> pd.DataFrame | None:
    """Published per-slice DLPFC ARI: one row per (method, source), slice ids as columns.
    None when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    table = pd.read_csv(path, sep="\t", dtype={"method": str, "source": str})
    table.columns = [str(c) for c in table.columns]
    return table


def read_reference_here(path: str | Path) -> dict[str, dict]:
    """The reference package's mclust ARI on the same files, from its markdown table rows
    ``| DLPFC <slide> | genes | seed | ARI (mclust) | ...``: {slide: {mean, sd, n, seeds}}."""
    path = Path(path)
    if not path.is_file():
        return {}
    found: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4:
            continue
        m = re.fullmatch(r"DLPFC (\d+)", cells[0])
        if not m:
            continue
        try:
            ari = float(cells[3])
        except ValueError:
            continue
        found.setdefault(m.group(1), []).append((cells[2].split()[0], ari))
    out = {}
    for slide, values in found.items():
        aris = np.array([v for _, v in values])
        out[slide] = {"mean": float(aris.mean()), "sd": float(aris.std(ddof=1)) if len(aris) > 1 else float("nan"),
                      "n": len(aris), "seeds": [s for s, _ in values]}
    return out


def per_slide_stats(table: pd.DataFrame, metric: str = "ARI") -> pd.DataFrame:
    """mean, sd (ddof 1) and n of ``metric`` over seeds per (sample, method)."""
    g = table.groupby(["sample", "method"], sort=False)[metric]
    return pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count()})


def _cell(stats: pd.Series, digits: int = 3) -> str:
    """One per_slide_stats row as 'mean ± sd (n=k)'."""
    if digits == 3:
        return format_mean_sd(stats["mean"], stats["sd"], int(stats["n"]))
    if not np.isfinite(stats["mean"]):
        return "n/a"
    return f"{stats['mean']:.{digits}f}" + (f" ± {stats['sd']:.{digits}f}" if np.isfinite(stats["sd"]) else "")


def _source_label(method: str, source: str) -> str:
    short = source.split(" doi:")[0].split(" (")[0]
    return f"{method} [{short}]"


def _wide(table: pd.DataFrame, metric: str, samples: list[str], methods: list[str]) -> list[str]:
    """Per sample and method: mean ± sd over seeds; last row: each method's median over samples."""
    stats = per_slide_stats(table, metric)
    digits = 3 if metric not in ("seconds", "cpu_s", "peak_mb") else (0 if metric == "peak_mb" else 1)
    lines = ["| sample | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for sample in samples:
        cells = [_cell(stats.loc[(sample, m)], digits) if (sample, m) in stats.index else "-" for m in methods]
        lines.append(f"| {sample} | " + " | ".join(cells) + " |")
    # A method without a value on a sample that others have one on (not run there, or NaN) has its median
    # over fewer samples than theirs: the cell says over how many, so the medians are not read as alike.
    scored = {s for (s, _), v in stats["mean"].items() if s in samples and np.isfinite(v)}
    med = []
    for m in methods:
        means = stats.xs(m, level="method")["mean"] if m in stats.index.get_level_values("method") else pd.Series()
        means = means[np.isfinite(means.to_numpy(dtype=float))]
        cell = f"{means.median():.{digits}f}" if len(means) else "-"
        if len(means) and len(means) < len(scored):
            cell += f" ({len(means)} of {len(scored)} samples)"
        med.append(cell)
    lines.append("| **median over samples** | " + " | ".join(med) + " |")
    return lines


_TITLES = {"ARI": "ARI against the manual annotation", "NMI": "NMI against the manual annotation",
           "CHAOS": "CHAOS (spatial continuity of the domains; lower is better)",
           "PAS": "PAS (share of spots unlike most of their neighbours; lower is better)",
           "seconds": "Seconds per run (train + cluster)", "cpu_s": "CPU seconds per run (train + cluster)",
           "peak_mb": "Peak memory per run, MB (max_rss)"}


def _answer_line(table: pd.DataFrame, trained_by: pd.Series, group: pd.Series) -> tuple[str, str] | tuple:
    """(the summary's column of the slide's answer, the sentence that names it) for a run of a combination
    of methods (config ``ensembles``, its rows' ``trained_by`` its members joined by '+'; the first, as the
    report's maps show it): its vote over every member at every seed ('<name> (consensus)', seed
    ``consensus``) where the run made one, else each seed's vote ('<name>'); () without a combination.
    ``table``'s methods as the summary shows them (:func:`shown_method`)."""
    alone = (group == "") & trained_by.str.contains("+", regex=False)
    if not alone.any():
        return ()
    first = table.loc[alone].iloc[0]
    name = str(first["method"]).removesuffix(" (consensus)")
    members = ", ".join(trained_by[alone].iloc[0].split("+"))
    voted = f"{name} (consensus)"
    if (table.loc[alone, "method"] == voted).any():
        return voted, (f"**The answer for each sample is the column `{voted}`**: one vote over {members} at every "
                       f"seed (`results/<sample>/{name}/consensus/domains.h5ad`, method `{name}` and seed `consensus` "
                       f"in `table.tsv`; its map is `domains.png` beside it). The column `{name}` is each seed's "
                       "own vote, mean ± sd over the seeds.")
    return name, (f"**The answer for each sample is the column `{name}`**: the vote over {members} at each seed "
                  f"(`results/<sample>/{name}/seed<seed>/domains.h5ad`, method `{name}` in `table.tsv`; its map is "
                  "`domains.png` beside it).")


def summary_markdown(table: pd.DataFrame, *, compare: dict | None = None, published: pd.DataFrame | None = None,
                     reference_here: dict | None = None, agreement: pd.DataFrame | None = None,
                     seeds_agree: pd.DataFrame | None = None) -> str:
    """The wide summary (markdown) of :func:`results_table`'s table.

    ``compare``: the config's ``compare:`` block (figure_method, baseline, ablation, sd_target,
    claim); without it the summary holds the metric tables and seed stability only."""
    compare = compare or {}
    reference_here = reference_here or {}
    graph_method = compare.get("figure_method", "graphst")
    baseline = compare.get("baseline", "expression")
    ablation = compare.get("ablation", "recon_only")
    sd_target = float(compare.get("sd_target", 0.02))
    groups = table["group"] if "group" in table else pd.Series("", index=table.index)
    table = table.assign(sample=table["sample"].astype(str),
                         method=[shown_method(m, g, s) for m, g, s in zip(table["method"], groups.fillna(""),
                                                                           table["seed"])])
    samples = list(dict.fromkeys(table["sample"]))
    methods = list(dict.fromkeys(table["method"]))
    # A combination of methods (config ``ensembles``, its rows' trained_by its members joined by '+': the
    # recommended answer) is the answer the run was made for: its columns first, so that a table wider
    # than the page shows it without scrolling, its members' after it in the config's order.
    answer = []
    if "trained_by" in table:
        by = table["trained_by"].astype(str)
        combined = set(table.loc[by.str.contains("+", regex=False), "method"])
        methods = [m for m in methods if m in combined] + [m for m in methods if m not in combined]
        answer = _answer_line(table, by, groups.fillna(""))
        if answer:      # the slide's answer is its first column (the seeds' mean of each seed's vote after it)
            methods = [answer[0]] + [m for m in methods if m != answer[0]]
    seeds = table.groupby("method")["seed"].nunique()
    out = ["# Results: domains found, per sample and method", ""] + ([answer[1], ""] if answer else []) + [
           "Every cell is the mean ± sd over seeds (n = seeds) of one sample and method; the last row is each "
           "method's median over samples of those means ('(k of n samples)' where the method has a value on fewer "
           "samples than the metric has). No best-seed numbers anywhere. Seeds per method: "
           + ", ".join(f"{m} {int(seeds[m])}" for m in methods if not m.endswith("(consensus)"))
           + ". One row per run: `table.tsv`."]
    if any(m.endswith("(consensus)") for m in methods):
        out[-1] += (" '<method> (consensus)': one labelling per sample combined from that method's seeds "
                    "(a combination of methods: every member at every seed; `stcore/consensus.py`), so its cells "
                    "have no sd; its seconds, CPU seconds and peak memory are those of the runs it combines, "
                    "together.")
    for metric in SUMMARY_METRICS:
        if metric in table and table[metric].notna().any():
            out += ["", f"## {_TITLES[metric]}", ""] + _wide(table, metric, samples, methods)
    stats = per_slide_stats(table, "ARI") if "ARI" in table else pd.DataFrame()

    # Seed stability: the sd over seeds, and whether the seeds give the same domains.
    seeded = [m for m in methods if not m.endswith("(consensus)")]
    if seeds_agree is not None and len(seeds_agree) and (seeds > 1).any():
        agree = seeds_agree.assign(sample=seeds_agree["sample"].astype(str)).set_index(["sample", "method"])["seed_ARI"]
        out += ["", "## Seed stability", "",
                "Per sample and method: seed sd of ARI against the annotation / mean pairwise ARI between the "
                "seeds' labelings (1 = every seed gives the same domains; '-' with one seed).", "",
                "| sample | " + " | ".join(seeded) + " |", "|---|" + "---|" * len(seeded)]
        for sample in samples:
            cells = []
            for m in seeded:
                sd = stats.loc[(sample, m)]["sd"] if (sample, m) in stats.index else float("nan")
                a = agree.get((sample, m), float("nan"))
                cells.append("-" if not np.isfinite(a) else (f"{sd:.3f} / {a:.3f}" if np.isfinite(sd) else f"- / {a:.3f}"))
            out.append(f"| {sample} | " + " | ".join(cells) + " |")

    # Groups of slides trained as one: how their joint domains hold across the slides.
    joint = table[groups.fillna("") != ""] if "iLISI" in table else table.iloc[:0]
    if len(joint):
        out += ["", "## Slides trained as one (groups)", "",
                "Per group and method, mean ± sd over seeds: iLISI (mixing of the slides in the features clustered, "
                "0 = none, 1 = full), domains_shared (share of domains holding >= 1% of every slide's spots), "
                "layers_consistent (share of annotated layers whose most common domain is the same on every "
                "slide). The per-slide rows above compare each slide trained alone (method) and with its group "
                "(method (joint)).", "",
                "| group | method | slides | iLISI | domains_shared | layers_consistent |", "|---|---|---|---|---|---|"]
        joint = joint.assign(group=groups[joint.index].to_numpy())
        for (group, method), rows in joint.groupby(["group", "method"], sort=False):
            once = rows.drop_duplicates("seed")          # group-level values repeat on each slide's row
            out.append(f"| {group} | {method} | {', '.join(dict.fromkeys(rows['sample']))} | "
                       + " | ".join(mean_sd(once[c]) for c in ("iLISI", "domains_shared", "layers_consistent")) + " |")

    # Published numbers, in their own labelled columns.
    pub_rows = []
    if published is not None:
        pub_rows = [r for _, r in published.iterrows() if str(r["method"]).split()[0] in ("GraphST", "STAGATE")]
    dlpfc = [s for s in samples if (published is not None and s in published.columns) or s in reference_here]
    if dlpfc and len(stats):
        head = [f"{graph_method} (this pipeline's graph model)", "reference GraphST package on these files"]
        head += [_source_label(str(r["method"]), str(r["source"])) for r in pub_rows]
        out += ["", "## DLPFC: this pipeline next to published numbers", "",
                "Published numbers are on the full gene sets; the files here hold gene subsets "
                "(151673/151674: 5,000 genes; 151510: 500 genes), so compare methods on the same files: the "
                "column that does is the reference GraphST package (PyPI GraphST 1.1.1, defaults, R mclust) "
                "run on these very files (`graphst_reference_here.md`; mean over the seeds it was run with).", "",
                "| sample | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
        for sample in dlpfc:
            cells = [_cell(stats.loc[(sample, graph_method)]) if (sample, graph_method) in stats.index else "-"]
            ref = reference_here.get(sample)
            cells.append(format_mean_sd(ref["mean"], ref["sd"], ref["n"]) if ref else "n/a")
            for r in pub_rows:
                v = pd.to_numeric(r.get(sample, np.nan), errors="coerce")
                cells.append(f"{v:.2f}" if np.isfinite(v) else "n/a")
            out.append(f"| {sample} | " + " | ".join(cells) + " |")
        if pub_rows:
            out += ["", "Sources: " + "; ".join(f"{r['method']}: {r['source']}" for r in pub_rows)
                    + " (`published_dlpfc_ari.tsv`)."]

    # Targets.
    target_lines = []
    for sample in dlpfc:
        ref = reference_here.get(sample)
        if ref is None or (sample, graph_method) not in stats.index:
            continue
        s = stats.loc[(sample, graph_method)]
        if not np.isfinite(s["mean"]):          # no annotation: no ARI to hold against the reference's
            target_lines.append(f"- {sample}: not compared with the reference package ({graph_method} {_cell(s)}: "
                                "no ARI without an annotation, the sample sheet's truth column).")
            continue
        ok_mean = s["mean"] >= ref["mean"]
        ok_sd = np.isfinite(s["sd"]) and s["sd"] <= sd_target
        # one seed has no sd: said so, not 'seed sd nan (n=1) > (or one seed) 0.02: NOT met'
        spread = (f"seed sd {s['sd']:.3f} (n={int(s['n'])}) {'<=' if ok_sd else '>'} {sd_target}: "
                  f"{'met' if ok_sd else 'NOT met'}" if np.isfinite(s["sd"]) else
                  f"seed sd not measured (one seed; the target of {sd_target:g} needs two or more)")
        target_lines.append(
            f"- {sample}: {graph_method} mean ARI {s['mean']:.3f} vs reference package {ref['mean']:.3f} -> "
            f"{'met' if ok_mean else 'NOT met'}; {spread}.")
    if compare:
        for sample in [s for s in samples if s not in dlpfc]:
            if (sample, graph_method) in stats.index and (sample, baseline) in stats.index:
                g, b = stats.loc[(sample, graph_method)], stats.loc[(sample, baseline)]
                if not (np.isfinite(g["mean"]) and np.isfinite(b["mean"])):     # no annotation: no ARI to compare
                    target_lines.append(f"- {sample}: not compared ({graph_method} {_cell(g)}, {baseline} {_cell(b)}: "
                                        "no ARI without an annotation, the sample sheet's truth column).")
                    continue
                verdict = "beats" if g["mean"] > b["mean"] else "does NOT beat"
                # means equal to the three decimals shown: the digits that decide ('0.015 beats 0.015')
                close = (f" (by less than 0.001: {g['mean']:.4f} vs {b['mean']:.4f})"
                         if f"{g['mean']:.3f}" == f"{b['mean']:.3f}" else "")
                target_lines.append(f"- {sample}: {graph_method} {_cell(g)} {verdict} {baseline} {_cell(b)}{close}.")
    if target_lines:
        others = [m for m in dict.fromkeys(m.split(" (")[0] for m in methods) if m not in (graph_method, baseline, ablation)]
        out += ["", "## Targets", ""]
        if others:      # a run of the recommended answer: these verdicts are not about its answer
            out += [f"The development targets of {graph_method} alone (config `compare`: figure_method, baseline, "
                    f"sd_target), not verdicts on {', '.join(others)}: their scores are in the tables above.", ""]
        out += target_lines

    # The paper's claim about the contrastive loss, with its thresholds from the config.
    claim = compare.get("claim")
    if claim and ablation in methods and graph_method in methods and "F1" in table:
        low, high = claim["f1_change_pct"]
        r_min = claim["recon_r_min"]
        out += ["", f"## Claim: {claim['text']}", "",
                f"{graph_method} (reconstruction + contrastive) against {ablation} (reconstruction only), "
                "per sample, mean ± sd over seeds; F1 = macro-F1 after a one-to-one matching of domains to labels; "
                "r = Pearson correlation of the decoder output with the expression it was trained on, over all "
                "spots x genes.", "",
                f"| sample | ARI {ablation} | ARI {graph_method} | F1 {ablation} | F1 {graph_method} | F1 change % | "
                f"r {ablation} | r {graph_method} |", "|---|---|---|---|---|---|---|---|"]
        f1 = per_slide_stats(table, "F1")
        rr = per_slide_stats(table, "recon_r")
        changes, r_graph, shown = [], [], 0
        for sample in samples:
            if (sample, ablation) not in stats.index or (sample, graph_method) not in stats.index:
                continue
            shown += 1
            fa, fg = f1.loc[(sample, ablation)], f1.loc[(sample, graph_method)]
            change = 100 * (fg["mean"] - fa["mean"]) / fa["mean"] if fa["mean"] > 0 else float("nan")
            if np.isfinite(change):             # a slide without an annotation has no F1
                changes.append(change)
            r = rr.loc[(sample, graph_method)]["mean"]
            if np.isfinite(r):
                r_graph.append(r)
            a, g = stats.loc[(sample, ablation)], stats.loc[(sample, graph_method)]
            out.append(f"| {sample} | {_cell(a)} | {_cell(g)} | {_cell(fa)} | {_cell(fg)} | "
                       f"{f'{change:+.1f}' if np.isfinite(change) else 'n/a'} | "
                       f"{_cell(rr.loc[(sample, ablation)])} | {_cell(rr.loc[(sample, graph_method)])} |")
        measured = []
        if changes:
            med = float(np.median(changes))
            measured.append(f"median F1 change over samples {med:+.1f}% (range {min(changes):+.1f}% to "
                            f"{max(changes):+.1f}%)")
        else:
            measured.append("no sample has an F1 (an annotation is needed): the F1 change is not measured")
        if r_graph:
            measured.append(f"lowest per-sample mean r of {graph_method} {min(r_graph):.3f}")
        else:
            measured.append(f"no sample has an r of {graph_method}: r is not measured")
        verdicts = ([f"F1 change in [{low}, {high}]%: {'holds' if low <= med <= high else 'does not hold'}"]
                    if changes else []) + ([f"r > {r_min}: {'holds' if min(r_graph) > r_min else 'does not hold'}"]
                                          if r_graph else [])
        if shown:
            out += ["", "Measured: " + "; ".join(measured) + "." + (" " + "; ".join(verdicts) + "." if verdicts else "")]

    # Agreement of the R-free clusterings with R's mclust.
    if agreement is not None and len(agreement):
        out += ["", "## R mclust (EEE) against the R-free clusterings on the same inputs", "",
                "Same input (the PCs the agreement method clusters), mean ± sd over seeds. R (same subset): R's "
                "Mclust given the agglomeration subset that `mclust` drew, so both run the same algorithm on "
                "the same rows; R: R's own random subset after set.seed(seed), as a GraphST user runs it; "
                "R vs R next seed: how stable R's own result is on the sample.", ""]
        done = agreement[agreement["status"] == "ok"]
        if len(done):
            cols = [("ARI_Rsubset_vs_mclust", "ARI(R same subset, mclust)"), ("ARI_R_vs_mclust", "ARI(R, mclust)"),
                    ("ARI_R_vs_gmm_tied", "ARI(R, gmm_tied)"), ("ARI_R_vs_Rnextseed", "ARI(R, R next seed)"),
                    ("ARI_R_truth", "R vs truth"), ("ARI_mclust_truth", "mclust vs truth"),
                    ("ARI_gmm_tied_truth", "gmm_tied vs truth")]
            out += ["| sample | seeds | " + " | ".join(h for _, h in cols) + " |", "|---|---|" + "---|" * len(cols)]
            for sample, rows in done.groupby("sample", sort=False):
                out.append(f"| {sample} | {len(rows)} | " + " | ".join(mean_sd(rows[c]) for c, _ in cols) + " |")
        else:
            out.append(f"Not run: {agreement['status'].iloc[0]}.")
    out += ["", "Methods with another 'trained_by' in `table.tsv` reuse that method's trained model (same sample "
            "and seed); their seconds include that training. prep_s (qc + hvg + graph) is shared by every run of "
            "a sample.", ""]
    return "\n".join(out)
