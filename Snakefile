from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/simulate.smk"
include: "rules/qc.smk"
include: "rules/hvg.smk"
include: "rules/graph.smk"
include: "rules/train.smk"
include: "rules/cluster.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/agreement.smk"
include: "rules/report.smk"
include: "rules/benchmark.smk"


rule all:
    default_target: True
    input:
        "results/benchmark.tsv",
        "results/benchmark.md",
