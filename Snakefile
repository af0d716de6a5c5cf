from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# The first page of `snakemake --report`: the summary table and where each figure is.
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/simulate.smk"
include: "rules/qc.smk"
include: "rules/group.smk"
include: "rules/hvg.smk"
include: "rules/graph.smk"
include: "rules/train.smk"
include: "rules/cluster.smk"
include: "rules/consensus.smk"
include: "rules/evaluate.smk"
include: "rules/export.smk"
include: "rules/table.smk"
include: "rules/agreement.smk"
include: "rules/report.smk"


rule all:
    """The results table over every slide, method and seed, its summary (and the report's first
    page, results/summary.html), and one domains.h5ad per run, per consensus of a method's seeds,
    per combination of methods at a seed and per consensus of a combination's seeds (and for a
    slide read from a SpatialData store, its domains as a store: domains.zarr)."""
    default_target: True
    input:
        "results/table.tsv",
        "results/summary.md",
        "results/summary.html",
        run_outputs("domains.h5ad"),
        consensus_outputs("domains.h5ad"),
        ensemble_outputs("domains.h5ad"),
        spatialdata_outputs(),


rule compare:
    """The comparison on labelled slides: the table with published numbers, the R agreement,
    and the figures."""
    input:
        "results/table.tsv",
        "results/summary.md",
        "results/summary.html",
        rules.report_figures.output,
