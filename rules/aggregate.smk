rule aggregate:
    """The benchmark table over all slides, methods and seeds."""
    input:
        metrics=run_outputs("metrics.tsv"),
        prep_bench=expand("results/benchmarks/{stage}/{sample}.tsv", stage=["qc", "hvg", "graph"],
                          sample=SAMPLES),
    output:
        tsv="results/benchmark.tsv",
        md="results/benchmark.md",
    params:
        methods=METHODS,
    log:
        "logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/aggregate.py"
