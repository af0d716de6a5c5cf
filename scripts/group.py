"""Snakemake step: the slides of a group joined on the genes they share."""
import json

import anndata as ad

from stcore.group import join_slides
from stcore.io import atomic_path, write_h5ad
from stcore.workflow import run_step


def main(sm):
    slides = {name: ad.read_h5ad(path) for name, path in zip(sm.params.slides, sm.input.slides)}
    # no annotation: the steps that score the group read it from each slide's qc.h5ad (a changed
    # truth column reruns them, not the group's training)
    joined, report = join_slides(slides, None, sm.wildcards.sample, values=sm.params.values)
    write_h5ad(joined, sm.output.h5ad)
    with atomic_path(sm.output.report) as tmp:
        tmp.write_text(json.dumps(report, indent=2))


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
