rule evaluate:
    """Every per-run metric, computed once: agreement with the manual annotation, the
    reconstruction's Pearson r, provenance; and the map of found domains."""
    input:
        labels=run_file("labels.tsv"),
        h5ad="results/{sample}/hvg.h5ad",
        annotation=lambda wildcards: PLAN.annotation_inputs(wildcards.sample),  # a group's: its slides' qc.h5ad
        truth=settings_stamp("annotation"),     # the truth column(s) they read
        npz=train_output("train.npz"),
        reference=of_run("map_reference"),     # a slide without an annotation: the domains its map's colours match
    output:
        metrics=run_file("metrics.tsv"),
        png=report(run_file("domains.png"), caption="../report/domains.rst", category="Domain maps",
                   subcategory="{sample}", labels=map_labels(slide="{sample}", method="{method}", seed="{seed}")),
    params:
        truth=slide("truth"),
        annotation=lambda wildcards: PLAN.annotation(wildcards.sample),
        run=lambda wildcards: {"sample": wildcards.sample, "method": wildcards.method, "seed": int(wildcards.seed),
                               "trained_by": PLAN.source(wildcards.method)},
        cluster=cluster_settings,
        settings=lambda wildcards: PLAN.run_settings(wildcards.method, wildcards.sample),
    log:
        "logs/evaluate/{sample}.{method}.seed{seed}.log",
    benchmark:
        record_file("evaluate", RUN_JOB)
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.evaluate_mem_mb,
    script:
        "../scripts/evaluate.py"
