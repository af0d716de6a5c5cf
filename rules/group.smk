rule group:
    """The slides of a group joined on the genes they share, to be trained as one."""
    wildcard_constraints:
        sample=choices(GROUPS),
    input:
        slides=lambda wildcards: PLAN.group_inputs(wildcards.sample),
        settings=settings_stamp("group"),
    output:
        h5ad="results/{sample}/qc.h5ad",
        report="results/{sample}/qc.json",
    params:
        slides=lambda wildcards: GROUPS[wildcards.sample],
        values=lambda wildcards: PLAN.slides[wildcards.sample]["values"],
    log:
        "logs/group/{sample}.log",
    benchmark:
        record_file("group", "{sample}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.group_mem_mb,
    script:
        "../scripts/group.py"
