rule hvg:
    """Highly variable genes, then normalise, log and scale."""
    input:
        h5ad="results/{sample}/qc.h5ad",
        settings=settings_stamp("hvg"),
    output:
        h5ad="results/{sample}/hvg.h5ad",
    params:
        hvg=lambda wildcards: dict(config["hvg"], values=slide_values(wildcards)),
    log:
        "logs/hvg/{sample}.log",
    benchmark:
        record_file("hvg", "{sample}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.hvg_mem_mb,
        runtime=RESOURCES.hvg_runtime,
    script:
        "../scripts/hvg.py"
