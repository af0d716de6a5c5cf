"""Snakemake step: the long benchmark table and its wide summary."""
from pathlib import Path

import pandas as pd

from stcore.benchmark import (benchmark_table, read_published, read_reference_here, seed_agreement,
                              summary_markdown)
from stcore.io import atomic_path
from stcore.workflow import run_step


def main(sm):
    table = benchmark_table(list(sm.params.runs))
    ref = Path(sm.params.reference_dir)
    agreement = pd.read_csv(sm.input.agreement, sep="\t")
    text = summary_markdown(table, published=read_published(ref / "published_dlpfc_ari.tsv"),
                            reference_here=read_reference_here(ref / "graphst_reference_here.md"),
                            agreement=agreement, seeds_agree=seed_agreement(list(sm.params.runs)),
                            graph_method=sm.params.graph_method,
                            baseline=sm.params.baseline, ablation=sm.params.ablation)
    with atomic_path(sm.output.tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    with atomic_path(sm.output.md) as tmp:
        tmp.write_text(text)


if "snakemake" in globals():
    run_step(snakemake, main, sample="all")  # noqa: F821
