rule export:
    """One domains.h5ad per run: raw counts, domains, embedding and spatial graph, for scanpy/squidpy."""
    input:
        qc="results/{sample}/qc.h5ad",
        graph="results/{sample}/graph.npz",
        npz=train_output("train.npz"),
        labels=run_file("labels.tsv"),
        metrics=run_file("metrics.tsv"),
    output:
        h5ad=run_file("domains.h5ad"),
    params:
        run=lambda wildcards: {"sample": wildcards.sample, "method": wildcards.method, "seed": int(wildcards.seed),
                               "trained_by": source_method(wildcards.method)},
        train=lambda wildcards: merged("train", source_method(wildcards.method)),
        cluster=method_params("cluster"),
    log:
        "logs/export/{sample}.{method}.seed{seed}.log",
    benchmark:
        record_file("export", RUN_JOB)
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/export.py"
