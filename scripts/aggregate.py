"""Snakemake step: the benchmark table over all slides, methods and seeds."""
from stcore.aggregate import benchmark_table, summary_markdown
from stcore.io import atomic_path
from stcore.workflow import run_step


def main(sm):
    table = benchmark_table(list(sm.input.metrics), list(sm.input.prep_bench))
    with atomic_path(sm.output.tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    with atomic_path(sm.output.md) as tmp:
        tmp.write_text(summary_markdown(table, list(sm.params.methods)))


if "snakemake" in globals():
    run_step(snakemake, main, sample="all")  # noqa: F821
