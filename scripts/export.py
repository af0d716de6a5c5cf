"""Snakemake step: one domains.h5ad per run, for scanpy and squidpy."""
import anndata as ad
import pandas as pd
import scipy.sparse as sp

from stcore.export import domains_adata
from stcore.io import read_tsv, write_h5ad
from stcore.methods import MethodResult
from stcore.workflow import run_step


def main(sm):
    counts = ad.read_h5ad(sm.input.qc)
    labels = read_tsv(sm.input.labels, index_col="spot")["domain"].loc[counts.obs_names]
    result = MethodResult.load(sm.input.npz)
    metrics = read_tsv(sm.input.metrics).iloc[0].to_dict()
    info = dict(sm.params.run) | {"train": dict(sm.params.train), "cluster": dict(sm.params.cluster),
                                  "metrics": {k: v for k, v in metrics.items() if not pd.isna(v)}}
    out = domains_adata(counts, labels.to_numpy(), result.embedding, sp.load_npz(sm.input.graph),
                        method=sm.params.run["method"], info=info)
    write_h5ad(out, sm.output.h5ad)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
