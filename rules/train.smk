rule train:
    """Train the graph model (or compute the expression baseline) for one method and seed."""
    input:
        h5ad="results/{sample}/hvg.h5ad",
        graph="results/{sample}/graph.npz",
    output:
        npz="results/{sample}/{method}/seed{seed}/train.npz",
        losses="results/{sample}/{method}/seed{seed}/losses.tsv",
    params:
        model=method_model,
        train=method_params("train"),
    log:
        "logs/train/{sample}.{method}.seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{sample}.{method}.seed{seed}.tsv"
    conda:
        env_for_train()
    threads: 2
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=train_gpus,
    script:
        "../scripts/train.py"
