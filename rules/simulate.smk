rule simulate:
    """A synthetic slide with known domains (the built-in demo needs no download)."""
    input:
        settings=settings_stamp("simulate"),
    output:
        h5ad=simulated_file(),
    params:
        sim=lambda wildcards: PLAN.job_settings("simulate", wildcards.name),
    log:
        "logs/simulate/{name}.log",
    benchmark:
        record_file("simulate", "{name}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.simulate_mem_mb,
        runtime=RESOURCES.simulate_runtime,
    wildcard_constraints:
        name=choices(PLAN.simulated),
    script:
        "../scripts/simulate.py"
