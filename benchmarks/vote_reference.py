"""The rule of docs/compare/DEFAULTS.md, "The vote over labelings of different sizes: the reference from the
median number": each member of the recommended answer at each seed clustered at its recorded ``auto``
choice (the cluster step's call, on the members' run), then the one vote over the nine labelings and each
seed's vote over three, with the reference as it was (``now``: the medoid of all) and as the candidate
(``median``: the medoid of those with the median number of domains; adopted, now ``stcore.consensus``); ARI and number of domains of each, against the answer at the
annotated number (``ARI_given``: the committed one answer, ``auto_k_slide.tsv``; per seed, the run's
``ensemble`` rows):

    cd benchmarks && ../.venv/bin/python vote_reference.py ../docs/compare/auto_k_lower_end.tsv \\
        ../docs/compare/auto_k_banksy.tsv ../docs/compare/auto_k_cellcharter.tsv --results <members' run>/results \\
        --samples ../studies/compare_samples.tsv --given ../docs/compare/auto_k_slide.tsv \\
        --out ../docs/compare/best/vote_reference.tsv
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from auto_k_pooled import read_records
from recommend import DOMAIN_SLIDES


def medoid_reference(labelings: list[np.ndarray]) -> np.ndarray:
    """The vote as it was before the rule adopted the candidate: the reference is the medoid of all the
    labelings (the highest mean ARI to the others, the first on a tie), whatever their numbers of domains.
    The candidate, the reference among those with the median number, is now ``stcore.consensus.consensus``."""
    from stcore.consensus import _vote
    from stcore.evaluate import ari

    codes = [pd.factorize(np.asarray(lab))[0] for lab in labelings]
    mean_ari = [np.mean([ari(codes[i], codes[j]) for j in range(len(codes)) if j != i]) for i in range(len(codes))]
    return _vote(codes, codes[int(np.argmax(mean_ari))])


def main() -> None:
    import anndata as ad

    from stcore.cluster import ClusterParams, features_of, run_cluster
    from stcore.consensus import consensus
    from stcore.evaluate import domain_metrics
    from stcore.methods import MethodResult

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+", type=Path)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--samples", type=Path, required=True)
    ap.add_argument("--given", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    records = read_records(a.records)
    members = list(records)
    sheet = pd.read_csv(a.samples, sep="\t", dtype=str, keep_default_na=False).set_index("sample")
    given = pd.read_csv(a.given, sep="\t", dtype={"sample": str}).set_index("sample")["ARI_given"]
    rows = []
    for sample in sheet.index:
        slide = ad.read_h5ad(a.results / sample / "hvg.h5ad", backed="r")
        coords, truth = np.asarray(slide.obsm["spatial"]), slide.obs[sheet.loc[sample, "truth"]].to_numpy()
        seeds = sorted({int(s) for s in records[members[0]].loc[sample].index})
        by_seed = {s: [] for s in seeds}
        for m in members:                       # the DAG's order: method, then seed
            for s in seeds:
                params = ClusterParams(seed=s)
                k = int(records[m].loc[(sample, s), "K_stab_ari"])
                result = MethodResult.load(a.results / sample / m / f"seed{s}" / "train.npz")
                by_seed[s].append((m, run_cluster(features_of(result, params), coords, k, params)))
        every = [lab for m in members for s in seeds for mm, lab in by_seed[s] if mm == m]
        groups = [("one answer", every, float(given.loc[sample]))]
        for s in seeds:
            ens = pd.read_csv(a.results / sample / "ensemble" / f"seed{s}" / "metrics.tsv", sep="\t")
            groups.append((f"seed {s}", [lab for _, lab in by_seed[s]], float(ens["ARI"].iloc[0])))
        for name, labelings, ari_given in groups:
            row = {"sample": sample, "answer": name, "annotated": int(sheet.loc[sample, "n_clusters"]),
                   "numbers": " ".join(str(len(np.unique(lab))) for lab in labelings), "ARI_given": ari_given}
            for label, combine in (("now", medoid_reference), ("median", consensus)):
                out = combine(labelings)
                row[f"K_{label}"] = int(len(np.unique(out)))
                row[f"ARI_{label}"] = float(domain_metrics(truth, out)["ARI"])
                row[f"gap_{label}"] = row[f"ARI_{label}"] - ari_given
            rows.append(row)
            print(row, flush=True)
    t = pd.DataFrame(rows)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    t.to_csv(a.out, sep="\t", index=False, float_format="%.4f")
    five = t[t["sample"].isin(DOMAIN_SLIDES) & (t["answer"] == "one answer")]
    for label in ("now", "median"):
        hits = (five[f"K_{label}"] - five["annotated"]).abs() <= 1
        near = five[f"gap_{label}"] >= -0.05
        print(f"{label}: hits {int(hits.sum())} of 5, gap within 0.05 on {int(near.sum())} of 5, both on "
              f"{int((hits & near).sum())}, median gap {five[f'gap_{label}'].median():.3f}")


if __name__ == "__main__":
    main()
