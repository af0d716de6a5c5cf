"""What n_clusters: auto picks on the labelled slides, next to the annotation's number of domains.

For every (slide, seed) of a finished comparison run of one method: the same clustering input
the cluster step uses (20 PCs of the reconstruction), mclust's BIC over ``--range`` (the EEE
mixture as ``n_clusters: auto`` fits it), the chosen number, and the ARI of the chosen labels
and of the labels at the annotation's number.

    .venv/bin/python benchmarks/auto_k.py --config config/compare_clustering.yaml --method graphst \\
        --seeds 0 --out docs/compare/auto_k.tsv
"""
from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import yaml

from stcore.cluster import ClusterParams, cluster_features
from stcore.evaluate import domain_metrics
from stcore.mclust import mclust_bic
from stcore.methods import MethodResult


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--method", default="graphst")
    ap.add_argument("--range", type=int, nargs=2, default=[2, 15])
    ap.add_argument("--seeds", type=int, nargs="+", help="these seeds only (default: the method's seeds)")
    ap.add_argument("--results", default="results")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    cfg = yaml.safe_load(open(a.config))
    sheet = pd.read_csv(cfg["samples"], sep="\t", dtype=str, keep_default_na=False)
    seeds = a.seeds or cfg["methods"][a.method].get("seeds", cfg["seeds"])
    rows = []
    for _, s in sheet.iterrows():
        if s["n_clusters"] == "auto":
            continue
        slide = ad.read_h5ad(Path(a.results) / s["sample"] / "hvg.h5ad", backed="r")
        truth = slide.obs[s["truth"]].to_numpy() if s.get("truth") else None
        for seed in seeds:
            npz = Path(a.results) / s["sample"] / a.method / f"seed{seed}" / "train.npz"
            if not npz.is_file():
                continue
            r = MethodResult.load(npz)
            params = ClusterParams(**{k: v for k, v in cfg.get("cluster", {}).items() if k != "method"}, seed=int(seed))
            x = cluster_features(r.embedding, r.decoded, r.decoder_weight, params)
            best, bic, labels = mclust_bic(x, range(a.range[0], a.range[1] + 1), seed=int(seed), subset=params.subset)
            row = {"sample": s["sample"], "method": a.method, "seed": int(seed), "annotated": int(s["n_clusters"]),
                   "auto": best, "bic_rank_of_annotated": 1 + sorted(bic.values(), reverse=True).index(bic[int(s["n_clusters"])])
                   if int(s["n_clusters"]) in bic else np.nan}
            if truth is not None:
                row["ARI_auto"] = domain_metrics(truth, labels)["ARI"]
            rows.append(row)
            print(row, flush=True)
    t = pd.DataFrame(rows)
    summary = t.groupby("sample").agg(annotated=("annotated", "first"), auto_picks=("auto", lambda v: " ".join(map(str, v))),
                                      ARI_auto_mean=("ARI_auto", "mean"))
    print(summary.to_string())
    if a.out:
        t.to_csv(a.out, sep="\t", index=False, float_format="%.4f")
    return t


if __name__ == "__main__":
    main()
