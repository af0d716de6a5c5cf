rule consensus:
    """One labelling from the seeds' labelings of a slide and method, and its metrics."""
    input:
        labels=of_run("seed_files", "labels.tsv"),
        h5ad="results/{sample}/hvg.h5ad",
        annotation=lambda wildcards: PLAN.annotation_inputs(wildcards.sample),  # a group's: its slides' qc.h5ad
        truth=settings_stamp("annotation"),     # the truth column(s) they read
        npz=of_run("embedding_training"),     # the machine that trained
        settings=settings_stamp("consensus"),
        reference=of_run("map_reference"),     # a slide without an annotation: the domains its map's colours match
    output:
        labels=consensus_file("labels.tsv"),
        metrics=consensus_file("metrics.tsv"),
        png=report(consensus_file("domains.png"), caption="../report/consensus.rst", category="Domain maps",
                   subcategory="{sample}", labels=map_labels(slide="{sample}", method="{method}", seed="consensus")),
    params:
        truth=slide("truth"),
        annotation=lambda wildcards: PLAN.annotation(wildcards.sample),
        run=of_run("run_record"),
        settings=of_run("consensus_settings"),
    log:
        "logs/consensus/{sample}.{method}.log",
    benchmark:
        record_file("consensus", "{sample}.{method}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/consensus.py"


rule ensemble:
    """One labelling from the labelings of several methods (config `ensembles`) on a slide at one
    seed, and its metrics: the consensus step across methods instead of seeds."""
    input:
        labels=of_run("member_files", "labels.tsv"),
        h5ad="results/{sample}/hvg.h5ad",
        annotation=lambda wildcards: PLAN.annotation_inputs(wildcards.sample),  # a group's: its slides' qc.h5ad
        truth=settings_stamp("annotation"),     # the truth column(s) they read
        npz=of_run("embedding_training"),
        settings=settings_stamp("ensemble"),
        reference=of_run("map_reference"),     # a slide without an annotation: the domains its map's colours match
    output:
        labels="results/{sample}/{ensemble}/seed{seed}/labels.tsv",
        metrics="results/{sample}/{ensemble}/seed{seed}/metrics.tsv",
        png=report("results/{sample}/{ensemble}/seed{seed}/domains.png", caption="../report/consensus.rst",
                   category="Domain maps", subcategory="{sample}",
                   labels=map_labels(slide="{sample}", method="{ensemble}", seed="{seed}")),
    params:
        truth=slide("truth"),
        annotation=lambda wildcards: PLAN.annotation(wildcards.sample),
        run=of_run("run_record"),
        settings=of_run("consensus_settings"),
    log:
        "logs/consensus/{sample}.{ensemble}.seed{seed}.log",
    benchmark:
        record_file("consensus", "{sample}.{ensemble}.seed{seed}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/consensus.py"


rule ensemble_consensus:
    """One labelling from every member's labelings of a combination of methods at every one of its
    seeds, and its metrics: one vote of the consensus step over them all, the slide's one answer."""
    input:
        labels=of_run("member_files", "labels.tsv"),
        h5ad="results/{sample}/hvg.h5ad",
        annotation=lambda wildcards: PLAN.annotation_inputs(wildcards.sample),  # a group's: its slides' qc.h5ad
        truth=settings_stamp("annotation"),     # the truth column(s) they read
        npz=of_run("embedding_training"),
        settings=settings_stamp("ensemble_consensus"),
        reference=of_run("map_reference"),     # a slide without an annotation: the domains its map's colours match
    output:
        labels=consensus_file("labels.tsv", method="{ensemble}"),
        metrics=consensus_file("metrics.tsv", method="{ensemble}"),
        png=report(consensus_file("domains.png", method="{ensemble}"), caption="../report/consensus.rst",
                   category="Domain maps", subcategory="{sample}",
                   labels=map_labels(slide="{sample}", method="{ensemble}", seed="consensus")),
    params:
        truth=slide("truth"),
        annotation=lambda wildcards: PLAN.annotation(wildcards.sample),
        run=of_run("run_record"),
        settings=of_run("consensus_settings"),
    log:
        "logs/consensus/{sample}.{ensemble}.consensus.log",
    benchmark:
        record_file("consensus", "{sample}.{ensemble}.consensus")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/consensus.py"
