"""Snakemake step: R mclust against the R-free clusterings on the same features (optional)."""
import logging

import anndata as ad
import pandas as pd

from stcore.agreement import AGREEMENT_COLUMNS, agreement_row, r_available
from stcore.cluster import ClusterParams, cluster_features
from stcore.io import atomic_path
from stcore.methods import MethodResult
from stcore.validate import check_truth
from stcore.workflow import run_step

COLUMNS = ["sample", "seed", "method", *AGREEMENT_COLUMNS, "status"]


def main(sm):
    ok, why = r_available() if sm.params.r_mclust else (False, "switched off (compare.r_mclust: false)")
    rows = []
    if not ok:
        logging.getLogger("stcore").warning("agreement table skipped: %s", why)
    for run in sm.params.runs:
        row = {"sample": run["sample"], "seed": run["seed"], "method": sm.params.method}
        if ok:
            slide = ad.read_h5ad(run["hvg"], backed="r")
            result = MethodResult.load(run["npz"])
            params = ClusterParams(**sm.params.cluster, seed=int(run["seed"]))
            features = cluster_features(result.embedding, result.decoded, result.decoder_weight, params)
            if run["truth"]:            # refused here too: a changed truth column reruns no qc
                check_truth(slide, run["truth"], after_qc=True)
            truth = slide.obs[run["truth"]].to_numpy() if run["truth"] else None
            row |= agreement_row(features, truth, run["n_clusters"], seed=int(run["seed"]),
                                 n_init=params.n_init) | {"status": "ok"}
        else:
            row["status"] = "skipped: " + why
        rows.append(row)
    with atomic_path(sm.output.tsv) as tmp:
        pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp, sep="\t", index=False, float_format="%.4f")


if "snakemake" in globals():
    run_step(snakemake, main, sample="all")  # noqa: F821
