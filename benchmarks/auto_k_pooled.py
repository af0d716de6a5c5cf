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


def combination_ari(results: Path, sample: str, members: list[str], seed: int, n_clusters: int, truth_key: str,
                    cluster: dict) -> float:
    """The ``ensemble`` vote's ARI with every member clustered at ``n_clusters`` (the cluster step's call)."""
    import anndata as ad

    from stcore.cluster import ClusterParams, features_of, run_cluster
    from stcore.consensus import consensus
    from stcore.evaluate import domain_metrics
    from stcore.methods import MethodResult

    slide = ad.read_h5ad(results / sample / "hvg.h5ad", backed="r")
    coords = np.asarray(slide.obsm["spatial"])
    params = ClusterParams(**cluster, seed=seed)
    labelings = [run_cluster(features_of(MethodResult.load(results / sample / m / f"seed{seed}" / "train.npz"), params),
                             coords, n_clusters, params) for m in members]
    return domain_metrics(slide.obs[truth_key].to_numpy(), consensus(labelings))["ARI"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+", type=Path, help="one benchmarks/auto_k.py record per member")
    ap.add_argument("--results", type=Path, help="the members' run's results/ folder (for the ARI)")
    ap.add_argument("--samples", type=Path, default=Path("studies/compare_samples.tsv"))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    records = {}
    for path in a.records:
        t = pd.read_csv(path, sep="\t", dtype={"sample": str})
        records[t["method"].iloc[0]] = t.set_index(["sample", "seed"])
    members = list(records)
    sheet = pd.read_csv(a.samples, sep="\t", dtype=str, keep_default_na=False).set_index("sample")
    first = records[members[0]]
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


if __name__ == "__main__":
    main()
