rule qc:
    """Read a slide, check it, and drop poor spots and rare genes."""
    wildcard_constraints:
        sample="|".join(re.escape(s) for s in SAMPLES) or "NONE",     # a group's qc.h5ad: rules/group.smk
    input:
        raw=raw_input,
        digest=input_stamp,
    output:
        h5ad="results/{sample}/qc.h5ad",
        report="results/{sample}/qc.json",
    params:
        path=lambda wildcards: sample_row(wildcards)["path"],
        format=lambda wildcards: sample_row(wildcards)["format"],
        truth=lambda wildcards: sample_row(wildcards)["truth"],
        n_clusters=lambda wildcards: slide_n_clusters(wildcards.sample),
        n_neighbors=config["graph"]["n_neighbors"],
        values=slide_values,
        hvg_flavor=config["hvg"]["flavor"],
        qc=config["qc"],
    log:
        "logs/qc/{sample}.log",
    benchmark:
        record_file("qc", "{sample}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=qc_mem_mb,
        runtime=qc_runtime,
    script:
        "../scripts/qc.py"
