rule report_figures:
    """Figures of the comparison: domains on the tissue, ARI per method, UMAP, loss curves."""
    input:
        table="results/table.tsv",
        hvg=expand("results/{sample}/hvg.h5ad", sample=SAMPLES),
        labels=run_outputs("labels.tsv"),
        npz=PLAN.umap_trainings(),
        losses=PLAN.loss_files(),
    output:
        boxplot=report("results/compare/figures/ari_boxplot.png", category="Figures", subcategory="ARI",
                       labels={"slide": "all", "figure": "ARI per method"}),
        domains=compare_figures("domains"),
        umap=compare_figures("umap", slides=PLAN.umap_slides()),
        losses=compare_figures("losses", slides=PLAN.loss_slides()),
    params:
        samples=PLAN.figure_samples(),
        figure_method=FIGURE_METHOD,
        figure_source=PLAN.figure_source,
        loss_methods=LOSS_METHODS,
        seeds=PLAN.method_seeds(),
        run_dir=lambda wildcards: RUN,
    log:
        "logs/report.log",
    benchmark:
        record_file("report", "all")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/report.py"
