rule simulate:
    """A synthetic slide with known domains (the built-in demo needs no download)."""
    input:
        settings=settings_stamp("simulate"),
    output:
        h5ad="results/simulated/{name}.h5ad",
    params:
        sim=lambda wildcards: config["simulate"][wildcards.name],
    log:
        "logs/simulate/{name}.log",
    benchmark:
        record_file("simulate", "{name}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    wildcard_constraints:
        name="|".join(re.escape(n) for n in config["simulate"]) or "NONE",
    script:
        "../scripts/simulate.py"
