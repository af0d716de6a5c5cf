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
    train = dict(sm.params.train, threads=sm.threads)
    n_clusters = train.pop("n_clusters", None)     # given to the peers only (rules/common.smk)
    result = fit(sm.params.model, slide.X, adj, np.asarray(slide.obsm["spatial"]), train, sm.params.seed,
                 counts=slide.layers["counts"] if "counts" in slide.layers else None, n_clusters=n_clusters)
    result.save(sm.output.npz)
    with atomic_path(sm.output.losses) as tmp:
        result.losses.to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
