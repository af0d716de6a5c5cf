rule export:
    """One domains.h5ad per run: raw counts, domains, embedding and spatial graph, for scanpy/squidpy."""
    input:
        qc="results/{sample}/qc.h5ad",
        annotation=lambda wildcards: PLAN.annotation_inputs(wildcards.sample),  # a group's: its slides' qc.h5ad
        truth=settings_stamp("annotation"),     # the truth column(s) they read
        graph="results/{sample}/graph.npz",
        graph_params="results/{sample}/graph.json",
        npz=train_output("train.npz"),
        labels=run_file("labels.tsv"),
        n_clusters=run_file("n_clusters.json"),
        metrics=run_file("metrics.tsv"),
        reference=of_run("map_reference"),     # a slide without an annotation: the domains its colours match
    output:
        h5ad=run_file("domains.h5ad"),
    params:
        truth=slide("truth"),
        annotation=lambda wildcards: PLAN.annotation(wildcards.sample),
        values=slide_values,
        run=of_run("run_record"),
        train=lambda wildcards: PLAN.trained_with(wildcards.method),
        cluster=cluster_settings,
    log:
        "logs/export/{sample}.{method}.seed{seed}.log",
    benchmark:
        record_file("export", RUN_JOB)
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.export_mem_mb,
    script:
        "../scripts/export.py"


rule export_consensus:
    """The consensus's domains.h5ad: the seeds' combined domains, every seed's own beside them."""
    input:
        qc="results/{sample}/qc.h5ad",
        annotation=lambda wildcards: PLAN.annotation_inputs(wildcards.sample),  # a group's: its slides' qc.h5ad
        truth=settings_stamp("annotation"),     # the truth column(s) they read
        graph="results/{sample}/graph.npz",
        graph_params="results/{sample}/graph.json",
        npz=of_run("embedding_training"),
        labels=consensus_file("labels.tsv"),
        metrics=consensus_file("metrics.tsv"),
        seed_labels=of_run("seed_files", "labels.tsv"),
        run_n_clusters=of_run("seed_files", "n_clusters.json"),
        reference=of_run("map_reference"),     # a slide without an annotation: the domains its colours match
    output:
        h5ad=consensus_file("domains.h5ad"),
    params:
        truth=slide("truth"),
        annotation=lambda wildcards: PLAN.annotation(wildcards.sample),
        values=slide_values,
        run=of_run("run_record"),
        seeds=lambda wildcards: method_seeds(wildcards.method),
        run_names=of_run("run_names"),
        train=lambda wildcards: PLAN.trained_with(wildcards.method),
        cluster=cluster_settings,
    log:
        "logs/export/{sample}.{method}.consensus.log",
    benchmark:
        record_file("export", "{sample}.{method}.consensus")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.export_mem_mb,
    script:
        "../scripts/export.py"


rule export_ensemble:
    """A combination of methods' domains.h5ad (config `ensembles`): the combined domains, each method's
    own beside them, the first method's embedding."""
    input:
        qc="results/{sample}/qc.h5ad",
        annotation=lambda wildcards: PLAN.annotation_inputs(wildcards.sample),  # a group's: its slides' qc.h5ad
        truth=settings_stamp("annotation"),     # the truth column(s) they read
        graph="results/{sample}/graph.npz",
        graph_params="results/{sample}/graph.json",
        npz=of_run("embedding_training"),
        labels="results/{sample}/{ensemble}/seed{seed}/labels.tsv",
        metrics="results/{sample}/{ensemble}/seed{seed}/metrics.tsv",
        member_labels=of_run("member_files", "labels.tsv"),
        member_npz=of_run("member_trainings"),
        run_n_clusters=of_run("member_files", "n_clusters.json"),
        reference=of_run("map_reference"),     # a slide without an annotation: the domains its colours match
    output:
        h5ad="results/{sample}/{ensemble}/seed{seed}/domains.h5ad",
    params:
        truth=slide("truth"),
        annotation=lambda wildcards: PLAN.annotation(wildcards.sample),
        values=slide_values,
        run=of_run("run_record"),
        members=lambda wildcards: ENSEMBLES[wildcards.ensemble],
        run_names=of_run("run_names"),
        train=lambda wildcards: PLAN.members_trained_with(wildcards.ensemble),
        cluster=lambda wildcards: PLAN.members_cluster_settings(wildcards.ensemble, wildcards.sample),
    log:
        "logs/export/{sample}.{ensemble}.seed{seed}.log",
    benchmark:
        record_file("export", "{sample}.{ensemble}.seed{seed}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.export_mem_mb,
    script:
        "../scripts/export.py"


rule export_ensemble_consensus:
    """The domains.h5ad of a combination's one answer over its seeds (every member at every seed in
    one vote): its domains, every seed's combination beside them, the first method's embedding at
    the first seed."""
    input:
        qc="results/{sample}/qc.h5ad",
        annotation=lambda wildcards: PLAN.annotation_inputs(wildcards.sample),  # a group's: its slides' qc.h5ad
        truth=settings_stamp("annotation"),     # the truth column(s) they read
        graph="results/{sample}/graph.npz",
        graph_params="results/{sample}/graph.json",
        npz=of_run("embedding_training"),
        labels=consensus_file("labels.tsv", method="{ensemble}"),
        metrics=consensus_file("metrics.tsv", method="{ensemble}"),
        seed_labels=of_run("seed_files", "labels.tsv"),
        member_npz=of_run("member_trainings"),
        run_n_clusters=of_run("member_files", "n_clusters.json"),
        reference=of_run("map_reference"),     # a slide without an annotation: the domains its colours match
    output:
        h5ad=consensus_file("domains.h5ad", method="{ensemble}"),
    params:
        truth=slide("truth"),
        annotation=lambda wildcards: PLAN.annotation(wildcards.sample),
        values=slide_values,
        run=of_run("run_record"),
        seeds=lambda wildcards: ensemble_seeds(wildcards.ensemble),
        members=lambda wildcards: ENSEMBLES[wildcards.ensemble],
        run_names=of_run("run_names"),
        train=lambda wildcards: PLAN.members_trained_with(wildcards.ensemble),
        cluster=lambda wildcards: PLAN.members_cluster_settings(wildcards.ensemble, wildcards.sample),
    log:
        "logs/export/{sample}.{ensemble}.consensus.log",
    benchmark:
        record_file("export", "{sample}.{ensemble}.consensus")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.export_mem_mb,
    script:
        "../scripts/export.py"


rule export_spatialdata:
    """A SpatialData slide's domains back in SpatialData (domains.zarr): the domains as a table
    annotating the store's own shapes, for napari-spatialdata and spatialdata-plot."""
    wildcard_constraints:
        label=r"[^/]+",
        which=r"seed\d+|consensus",
    input:
        h5ad="results/{sample}/{label}/{which}/domains.h5ad",
        digest=input_stamp,     # the store's content (its input stamp); its path, read from the sheet, is no input
    output:
        zarr=directory("results/{sample}/{label}/{which}/domains.zarr"),
    log:
        "logs/export/{sample}.{label}.{which}.zarr.log",
    benchmark:
        record_file("export", "{sample}.{label}.{which}.zarr")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/export.py"
