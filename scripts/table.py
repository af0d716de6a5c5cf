"""Snakemake step: the one results table over every slide, method and seed, and its summary."""
from pathlib import Path

from stcore.io import atomic_path, read_tsv
from stcore.report import figures_html, page_html
from stcore.table import (read_published, read_reference_here, results_table, seed_agreement, summary_markdown,
                          write_table)
from stcore.workflow import run_step


def main(sm):
    runs = list(sm.params.runs)
    table = results_table(runs, list(sm.input.prep_records))
    compare = dict(sm.params.compare)
    ref = Path(compare.get("reference_dir", "")) if compare.get("reference_dir") else None
    agreement = read_tsv(sm.input.agreement) if sm.input.agreement else None
    text = summary_markdown(
        table, compare=compare, agreement=agreement, seeds_agree=seed_agreement(runs),
        published=read_published(ref / "published_dlpfc_ari.tsv") if ref else None,
        reference_here=read_reference_here(ref / "graphst_reference_here.md") if ref else None)
    with atomic_path(sm.output.tsv) as tmp:
        write_table(table, tmp)
    with atomic_path(sm.output.md) as tmp:
        tmp.write_text(text)
    with atomic_path(sm.output.html) as tmp:       # the same summary, shown on the report's first page
        tmp.write_text(page_html(text, figures_html(table, list(sm.params.figures))), encoding="utf-8")


if "snakemake" in globals():
    run_step(snakemake, main, sample="all")  # noqa: F821
