"""Snakemake step: write a synthetic slide with known domains."""
from stcore.io import write_h5ad
from stcore.simulate import SimParams, simulate_slide
from stcore.workflow import run_step


def main(sm):
    write_h5ad(simulate_slide(SimParams(**sm.params.sim)), sm.output.h5ad)


if "snakemake" in globals():
    run_step(snakemake, main, sample=snakemake.wildcards.name)  # noqa: F821
