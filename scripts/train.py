"""Snakemake step: fit one method (from the registry, stcore.methods) for one slide and seed."""
import anndata as ad
import numpy as np
import scipy.sparse as sp

from stcore.io import atomic_path
from stcore.methods import fit
from stcore.workflow import run_step


def main(sm):
    slide = ad.read_h5ad(sm.input.h5ad)
    adj = sp.load_npz(sm.input.graph)
    result = fit(sm.params.model, slide.X, adj, np.asarray(slide.obsm["spatial"]),
                 dict(sm.params.train, threads=sm.threads), sm.params.seed)
    result.save(sm.output.npz)
    with atomic_path(sm.output.losses) as tmp:
        result.losses.to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
