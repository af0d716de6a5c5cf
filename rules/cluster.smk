rule cluster:
    """Spatial domains from the model's output."""
    input:
        npz=train_output("train.npz"),
        h5ad="results/{sample}/hvg.h5ad",
    output:
        labels="results/{sample}/{method}/seed{seed}/labels.tsv",
    params:
        cluster=method_params("cluster"),
        n_clusters=lambda wildcards: int(sample_row(wildcards)["n_clusters"]),
    log:
        "logs/cluster/{sample}.{method}.seed{seed}.log",
    benchmark:
        "results/benchmarks/cluster/{sample}.{method}.seed{seed}.tsv"
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/cluster.py"
