rule cluster:
    """Spatial domains from the model's output."""
    input:
        npz=train_output("train.npz"),
        h5ad="results/{sample}/hvg.h5ad",
        settings=settings_stamp("cluster"),
    output:
        labels=run_file("labels.tsv"),
        n_clusters=run_file("n_clusters.json"),
    params:
        cluster=cluster_settings,
        n_clusters=slide_n_clusters,
        seed=seed_param,
    log:
        "logs/cluster/{sample}.{method}.seed{seed}.log",
    benchmark:
        record_file("cluster", RUN_JOB)
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.cluster_mem_mb,
    script:
        "../scripts/cluster.py"
