"""Snakemake step: highly variable genes and the expression transform."""
import anndata as ad

from stcore.hvg import HVGParams, run_hvg
from stcore.io import write_h5ad
from stcore.workflow import run_step


def main(sm):
    write_h5ad(run_hvg(ad.read_h5ad(sm.input.h5ad), HVGParams(**sm.params.hvg)), sm.output.h5ad)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
