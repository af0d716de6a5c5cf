rule report_figures:
    """Figures of the comparison: domains on the tissue, ARI per method, UMAP, loss curves."""
    input:
        table="results/table.tsv",
        hvg=expand("results/{sample}/hvg.h5ad", sample=SAMPLES),
        labels=run_outputs("labels.tsv"),
        npz=PLAN.training_outputs("train.npz", [FIGURE_METHOD]) if FIGURE_METHOD in METHODS else [],
        losses=run_outputs("losses.tsv", methods=LOSS_METHODS) if LOSS_METHODS else [],
    output:
        boxplot=report("results/compare/figures/ari_boxplot.png", category="Figures", subcategory="ARI",
                       labels={"slide": "all", "figure": "ARI per method"}),
        domains=compare_figures("domains"),
        umap=compare_figures("umap", COMPARE.get("umap", True) and FIGURE_METHOD in METHODS,
                             PLAN.figure_slides([FIGURE_METHOD])),
        losses=compare_figures("losses", bool(LOSS_METHODS), PLAN.figure_slides(LOSS_METHODS)),
    params:
        samples=[{"sample": s, "truth": PLAN.slides[s]["truth"]} for s in SAMPLES],
        figure_method=FIGURE_METHOD,
        figure_source=PLAN.source(FIGURE_METHOD) if FIGURE_METHOD in METHODS else FIGURE_METHOD,
        loss_methods=LOSS_METHODS,
        seeds={m: method_seeds(m) for m in METHODS},
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
