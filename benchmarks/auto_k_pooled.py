"""The rule of docs/compare/DEFAULTS.md, "`auto: stability` for a combination of methods": one number
of domains for a combination from its members' mean stability curve, measured on the members' recorded
curves (``benchmarks/auto_k.py`` records, one per member: ``curve_stab_ari`` per slide and seed).

Per slide and seed: each member's own choice (``K_stab_ari``) and the most stable number of the members'
mean curve (the smaller on a tie); a slide is a hit when the choice is within 1 of the annotated number
for at least two of its seeds.  With ``--results`` (the members' run) also the combination's ARI at that
number (each member clustered at it by the cluster step's own call, then the ``ensemble`` vote) against
its ARI at the annotated number:

    .venv/bin/python benchmarks/auto_k_pooled.py docs/compare/auto_k_lower_end.tsv \\
        docs/compare/auto_k_banksy.tsv docs/compare/auto_k_cellcharter.tsv --out docs/compare/auto_k_pooled.tsv

With ``--slide`` the rule of "One number of domains for the slide's one answer": per slide, the median of
every member's choice at every seed (:func:`slide_choice`) and, with ``--results``, the one
vote over every member at every seed clustered at it against at the annotated number (``auto_k_slide.tsv``).
With ``--seeds`` the rule of "One number of domains for a method's seeds": per member and slide, the most stable
number of the mean of its seeds' curves and, with ``--results``, its seeds combined at it against at the
annotated number (``auto_k_seeds.tsv``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from recommend import DOMAIN_SLIDES


def curve_of(text: str) -> dict[int, float]:
    """A record's curve, 'G:stability G:stability ...', as {G: stability}."""
    return {int(g): float(v) for g, v in (item.split(":") for item in text.split())}


def pooled_choice(curves: list[dict[int, float]]) -> int:
    """The most stable number of the mean of ``curves`` (the smaller on a tie)."""
    gs = sorted(curves[0])
    mean = {g: float(np.mean([c[g] for c in curves])) for g in gs}
    return max(gs, key=lambda g: (mean[g], -g))


def slide_choice(choices) -> int:
    """One number of domains for a slide from several runs' ``auto`` choices (every member of a
    combination at every seed): their median, the lower of the two middle ones for an even count."""
    ordered = sorted(int(c) for c in choices)
    if not ordered:
        raise ValueError("slide_choice: no choices")
    return ordered[(len(ordered) - 1) // 2]


def read_records(paths: list[Path]) -> dict[str, pd.DataFrame]:
    """``benchmarks/auto_k.py`` records, one per member, by member, indexed by (sample, seed)."""
    records = {}
    for path in paths:
        t = pd.read_csv(path, sep="\t", dtype={"sample": str})
        records[t["method"].iloc[0]] = t.set_index(["sample", "seed"])
    return records


def combination_ari(results: Path, sample: str, members: list[str], seeds: int | list[int], n_clusters: int,
                    truth_key: str, cluster: dict, combine=None) -> float:
    """The ``ensemble`` vote's ARI with every member clustered at ``n_clusters`` (the cluster step's call) at
    one seed, or, with several seeds, the one vote over every member at every seed (method, then seed);
    ``combine``: another combiner of the labelings than ``stcore.consensus.consensus``."""
    import anndata as ad

    from stcore.cluster import ClusterParams, features_of, run_cluster
    from stcore.consensus import consensus
    from stcore.evaluate import domain_metrics
    from stcore.methods import MethodResult

    slide = ad.read_h5ad(results / sample / "hvg.h5ad", backed="r")
    coords = np.asarray(slide.obsm["spatial"])
    labelings = []
    for m in members:
        for seed in np.atleast_1d(seeds):
            params = ClusterParams(**cluster, seed=int(seed))
            result = MethodResult.load(results / sample / m / f"seed{seed}" / "train.npz")
            labelings.append(run_cluster(features_of(result, params), coords, n_clusters, params))
    return domain_metrics(slide.obs[truth_key].to_numpy(), (combine or consensus)(labelings))["ARI"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+", type=Path, help="one benchmarks/auto_k.py record per member")
    ap.add_argument("--results", type=Path, help="the members' run's results/ folder (for the ARI)")
    ap.add_argument("--samples", type=Path, default=Path("studies/compare_samples.tsv"))
    ap.add_argument("--slide", action="store_true", help="one number per slide: the median of every choice")
    ap.add_argument("--seeds", action="store_true", help="one number per member and slide: its seeds' mean curve")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    records = read_records(a.records)
    members = list(records)
    sheet = pd.read_csv(a.samples, sep="\t", dtype=str, keep_default_na=False).set_index("sample")
    first = records[members[0]]
    if a.slide:
        return slide_numbers(records, members, sheet, a.results, a.out)
    if a.seeds:
        return seed_numbers(records, members, sheet, a.results, a.out)
    rows = []
    for sample, seed in first.index:
        annotated = int(first.loc[(sample, seed), "annotated"])
        row = {"sample": sample, "seed": seed, "annotated": annotated}
        row |= {f"K_{m}": int(records[m].loc[(sample, seed), "K_stab_ari"]) for m in members}
        row["K_pooled"] = pooled_choice([curve_of(records[m].loc[(sample, seed), "curve_stab_ari"]) for m in members])
        if a.results is not None:
            args = (a.results, sample, members, int(seed))
            truth = sheet.loc[sample, "truth"]
            row["ARI_pooled"] = combination_ari(*args, row["K_pooled"], truth, {})
            row["ARI_given"] = combination_ari(*args, annotated, truth, {})
        rows.append(row)
        print(row, flush=True)
    t = pd.DataFrame(rows)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    t.to_csv(a.out, sep="\t", index=False, float_format="%.4f")
    hits = {}
    for name in [f"K_{m}" for m in members] + ["K_pooled"]:
        near = (t[name] - t["annotated"]).abs() <= 1
        per_slide = near.groupby(t["sample"]).sum() >= 2
        hits[name] = int(per_slide[per_slide.index.isin(DOMAIN_SLIDES)].sum())
    print("hits on the five domain slides (within 1 for at least two seeds):", hits)
    if a.results is not None:
        gap = (t["ARI_pooled"] - t["ARI_given"]).groupby(t["sample"]).mean()
        print("gap (mean ARI at the pooled choice minus at the annotated number):", gap.round(3).to_dict())


def slide_numbers(records: dict, members: list[str], sheet: pd.DataFrame, results: Path | None, out: Path) -> None:
    """Per slide, the median of every member's choice at every seed, and the one vote's ARI at it."""
    rows = []
    for sample, runs in records[members[0]].groupby(level="sample", sort=False):
        seeds = [int(s) for s in runs.index.get_level_values("seed")]
        choices = [int(records[m].loc[(sample, s), "K_stab_ari"]) for m in members for s in seeds]
        rows.append(_at_number({"sample": sample, "annotated": int(runs["annotated"].iloc[0]),
                                "choices": " ".join(map(str, choices))}, slide_choice(choices),
                               results, sheet, members, seeds))
    _summary(rows, out, results)


def seed_numbers(records: dict, members: list[str], sheet: pd.DataFrame, results: Path | None, out: Path) -> None:
    """Per member and slide, the most stable number of its seeds' mean curve, and its seeds combined at it."""
    rows = []
    for m in members:
        for sample, runs in records[m].groupby(level="sample", sort=False):
            seeds = [int(s) for s in runs.index.get_level_values("seed")]
            rows.append(_at_number({"method": m, "sample": sample, "annotated": int(runs["annotated"].iloc[0]),
                                    "per_seed": " ".join(str(int(k)) for k in runs["K_stab_ari"])},
                                   pooled_choice([curve_of(c) for c in runs["curve_stab_ari"]]),
                                   results, sheet, [m], seeds))
    _summary(rows, out, results)


def _at_number(row: dict, k: int, results: Path | None, sheet: pd.DataFrame, members: list[str],
               seeds: list[int]) -> dict:
    """``row`` with the chosen number ``K`` and, with ``results``, the vote over ``members`` at ``seeds``
    clustered at it (``ARI_K``) and at the annotated number (``ARI_given``), and their ``gap``."""
    row = row | {"K": k}
    if results is not None:
        truth = sheet.loc[row["sample"], "truth"]
        row["ARI_K"] = combination_ari(results, row["sample"], members, seeds, k, truth, {})
        row["ARI_given"] = combination_ari(results, row["sample"], members, seeds, row["annotated"], truth, {})
        row["gap"] = row["ARI_K"] - row["ARI_given"]
    print(row, flush=True)
    return row


def _summary(rows: list[dict], out: Path, results: Path | None) -> None:
    """Write ``rows`` and print, per method where they have one, the hits and the gaps within 0.05 on the
    five domain slides."""
    t = pd.DataFrame(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    t.to_csv(out, sep="\t", index=False, float_format="%.4f")
    five = t[t["sample"].isin(DOMAIN_SLIDES)]
    for name, mine in (five.groupby("method", sort=False) if "method" in five else [("slide", five)]):
        summary = f"{name}: within 1 of the annotated number on {int(((mine['K'] - mine['annotated']).abs() <= 1).sum())} of 5"
        if results is not None:
            summary += f", gap within 0.05 on {int((mine['gap'] >= -0.05).sum())} of 5"
        print(summary)


if __name__ == "__main__":
    main()
