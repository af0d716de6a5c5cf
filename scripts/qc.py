"""Snakemake step: read a slide, check it, apply QC."""
import json

from stcore.io import atomic_path, write_h5ad
from stcore.qc import QCParams, prepare_slide
from stcore.workflow import run_step


def main(sm):
    adata, report = prepare_slide(
        sm.params.path, sm.params.format, QCParams(**sm.params.qc), truth=sm.params.truth,
        n_clusters=sm.params.n_clusters, n_neighbors=sm.params.n_neighbors,
        values=sm.params.values, hvg_flavor=sm.params.hvg_flavor,
    )
    write_h5ad(adata, sm.output.h5ad)
    with atomic_path(sm.output.report) as tmp:
        tmp.write_text(json.dumps(report, indent=2))


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
