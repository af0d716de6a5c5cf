"""Snakemake step: train the graph model, or compute the expression baseline."""
import json

import anndata as ad
import numpy as np
import scipy.sparse as sp

from stcore.io import atomic_path
from stcore.provenance import machine
from stcore.train import TrainParams, fit_expression, fit_graph_model
from stcore.workflow import run_step


def main(sm):
    params = dict(sm.params.train)
    pca_comps = params.pop("pca_comps", 50)
    seed = int(sm.wildcards.seed)
    x = ad.read_h5ad(sm.input.h5ad).X
    if sm.params.model == "expression":
        result = fit_expression(x, pca_comps, seed=seed)
    else:
        adj = sp.load_npz(sm.input.graph)
        result = fit_graph_model(x, adj, TrainParams(**params, seed=seed, threads=sm.threads))
    with atomic_path(sm.output.npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, embedding=result.embedding, decoded=result.decoded,
                     decoder_weight=result.decoder_weight, seconds=result.seconds, device=result.device,
                     machine=json.dumps(machine()))
    with atomic_path(sm.output.losses) as tmp:
        result.losses.to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
