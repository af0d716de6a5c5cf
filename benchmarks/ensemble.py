"""Seed ensembles of graphst, measured between disjoint seed sets (docs/compare/DEFAULTS.md,
"Seed ensembles": the rule was written before this was run).

From the comparison's trained runs (results/<slide>/graphst/seed<s>/{train.npz,labels.tsv}):

- ``single``: each seed's labels as the DAG clustered them (mclust EEE on PCA 20 of Â Z W2).
- ``consensus K``: the K seeds' labelings combined (``stcore.consensus``, the DAG's consensus step).
- ``mean K``: the mean of the K seeds' reconstructions, clustered once as the DAG clusters one
  seed.  Exact and without the N x G matrix: the mean of D_s W_s is [D_1 .. D_K] [W_1; ..; W_K] / K,
  whose PCA scores ``stcore.cluster.pca_scores`` takes from the two factors.

Replicates are disjoint seed sets: K = 5 on {0-4}, {5-9}; K = 3 on {0-2}, {3-5}, {6-8}.

    .venv/bin/python benchmarks/ensemble.py --config studies/compare_clustering.yaml \\
        --seeds 0 1 2 3 4 5 6 7 8 9 --out docs/compare/ensemble.tsv
"""
from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import yaml

from stcore.cluster import pca_scores
from stcore.consensus import consensus
from stcore.evaluate import domain_metrics
from stcore.mclust import mclust
from stcore.methods import MethodResult


def replicates(seeds: list[int], k: int) -> list[list[int]]:
    return [seeds[i:i + k] for i in range(0, len(seeds) - k + 1, k)]


def seed_runs_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments of this study over the comparison's trained seeds."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="studies/compare_clustering.yaml")
    ap.add_argument("--results", default="results")
    ap.add_argument("--method", default="graphst")
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    ap.add_argument("--samples", nargs="+")
    ap.add_argument("--out")
    return ap


def main(argv=None):
    ap = seed_runs_parser(__doc__)
    ap.add_argument("--sizes", nargs="+", type=int, default=[3, 5])
    a = ap.parse_args(argv)
    cfg = yaml.safe_load(Path(a.config).read_text())
    sheet = pd.read_csv(cfg["samples"], sep="\t", dtype=str, keep_default_na=False).set_index("sample")
    n_pcs = int((cfg.get("cluster") or {}).get("n_pcs", 20))
    rows = []
    for sample in a.samples or list(sheet.index):
        k_dom = int(sheet.loc[sample, "n_clusters"])
        obs = ad.read_h5ad(Path(a.results) / sample / "hvg.h5ad", backed="r").obs
        truth = obs[sheet.loc[sample, "truth"]].to_numpy()
        run = {s: Path(a.results) / sample / a.method / f"seed{s}" for s in a.seeds}
        labels = {s: pd.read_csv(run[s] / "labels.tsv", sep="\t", index_col="spot")["domain"].loc[obs.index]
                  .to_numpy() for s in a.seeds}
        trained = {s: MethodResult.load(run[s] / "train.npz") for s in a.seeds}

        def ari(lab):
            return domain_metrics(truth, lab)["ARI"]

        for s in a.seeds:
            rows.append({"sample": sample, "variant": "single", "K": 1, "seeds": str(s), "ARI": ari(labels[s])})
        for k in a.sizes:
            for group in replicates(a.seeds, k):
                name = "-".join(map(str, group))
                rows.append({"sample": sample, "variant": "consensus", "K": k, "seeds": name,
                             "ARI": ari(consensus([labels[s] for s in group]))})
                left = np.hstack([trained[s].decoded for s in group]) / k
                right = np.vstack([trained[s].decoder_weight for s in group])
                lab = mclust(pca_scores(left, right, n_pcs), k_dom, seed=group[0])
                rows.append({"sample": sample, "variant": "mean", "K": k, "seeds": name, "ARI": ari(lab)})
        print(pd.DataFrame(rows[-(len(a.seeds) + 2 * sum(len(replicates(a.seeds, k)) for k in a.sizes)):])
              .groupby(["variant", "K"])["ARI"].agg(["mean", "std", "count"]).round(3).assign(sample=sample))
    table = pd.DataFrame(rows)
    summary = (table.groupby(["sample", "variant", "K"], sort=False)["ARI"]
               .agg(mean="mean", sd=lambda v: v.std(ddof=1), replicates="count").reset_index())
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if a.out:
        table.to_csv(a.out, sep="\t", index=False, float_format="%.4f")
        summary.to_csv(Path(a.out).with_name(Path(a.out).stem + "_summary.tsv"), sep="\t", index=False,
                       float_format="%.4f")


if __name__ == "__main__":
    main()
