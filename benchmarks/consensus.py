"""ARI of a consensus over the seeds' labelings, against the mean ARI of the seeds, on the
comparison's results (a variant measured here, not a step of the pipeline).

Consensus of a (slide, method)'s seed labelings: ``stcore.consensus.consensus`` (the DAG's
consensus step).

    .venv/bin/python benchmarks/consensus.py --config studies/compare.yaml \\
        --methods graphst refine mclust_all --out docs/compare/consensus.tsv
"""
from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import adjusted_rand_score

from stcore.consensus import consensus
from stcore.evaluate import domain_metrics


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="studies/compare.yaml")
    ap.add_argument("--results", default="results")
    ap.add_argument("--methods", nargs="+", default=["graphst"])
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    cfg = yaml.safe_load(Path(a.config).read_text())
    sheet = pd.read_csv(cfg["samples"], sep="\t", dtype=str, keep_default_na=False)
    rows = []
    for _, srow in sheet.iterrows():
        sample, truth_col = srow["sample"], srow["truth"]
        obs = ad.read_h5ad(Path(a.results) / sample / "hvg.h5ad", backed="r").obs
        truth = obs[truth_col].to_numpy()
        for method in a.methods:
            seeds = cfg["methods"][method].get("seeds", cfg["seeds"])
            labs = [pd.read_csv(Path(a.results) / sample / method / f"seed{s}" / "labels.tsv", sep="\t",
                                index_col="spot")["domain"].loc[obs.index].to_numpy() for s in seeds]
            aris = [domain_metrics(truth, lab)["ARI"] for lab in labs]
            cons = consensus(labs)
            rows.append({"sample": sample, "method": method, "seeds": len(labs), "ARI_mean": np.mean(aris),
                         "ARI_sd": np.std(aris, ddof=1), "ARI_consensus": domain_metrics(truth, cons)["ARI"],
                         "seed_ARI": np.mean([adjusted_rand_score(x, y) for x, y in combinations(labs, 2)])})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if a.out:
        table.to_csv(a.out, sep="\t", index=False, float_format="%.4f")


if __name__ == "__main__":
    main()
