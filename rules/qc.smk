rule qc:
    """Read a slide, check it, and drop poor spots and rare genes."""
    wildcard_constraints:
        sample=choices(SAMPLES),     # a group's qc.h5ad: rules/group.smk
    input:
        raw=raw_input,
        digest=input_stamp,
        settings=settings_stamp("qc"),
    output:
        h5ad="results/{sample}/qc.h5ad",
        report="results/{sample}/qc.json",
    params:
        format=slide("format"),
        values=slide_values,
        qc=config["qc"],
    log:
        "logs/qc/{sample}.log",
    benchmark:
        record_file("qc", "{sample}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.qc_mem_mb,
        runtime=RESOURCES.qc_runtime,
    script:
        "../scripts/qc.py"
