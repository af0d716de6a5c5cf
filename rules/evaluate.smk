rule evaluate:
    """Agreement with the manual annotation, and the map of found domains."""
    input:
        labels="results/{sample}/{method}/seed{seed}/labels.tsv",
        h5ad="results/{sample}/hvg.h5ad",
        train=train_output("train.npz"),
        train_bench=train_benchmark,
        cluster_bench="results/benchmarks/cluster/{sample}.{method}.seed{seed}.tsv",
    output:
        metrics="results/{sample}/{method}/seed{seed}/metrics.tsv",
        png="results/{sample}/{method}/seed{seed}/domains.png",
    params:
        truth=lambda wildcards: sample_row(wildcards)["truth"],
    log:
        "logs/evaluate/{sample}.{method}.seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/{sample}.{method}.seed{seed}.tsv"
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/evaluate.py"
