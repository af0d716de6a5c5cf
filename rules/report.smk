rule report_figures:
    """Figures of the benchmark: domains on the tissue, ARI per variant, UMAP, loss curves."""
    input:
        table="results/benchmark/ari.tsv",
        hvg=expand("results/{sample}/hvg.h5ad", sample=SAMPLES),
        labels=run_outputs("labels.tsv"),
        npz=run_outputs("train.npz", methods=[FIGURE_METHOD]) if FIGURE_METHOD in METHODS else [],
        losses=run_outputs("losses.tsv", methods=LOSS_METHODS) if LOSS_METHODS else [],
    output:
        boxplot=report("results/benchmark/figures/ari_boxplot.png", category="Figures", subcategory="ARI",
                       labels={"slide": "all", "figure": "ARI per variant"}),
        domains=benchmark_figures("domains"),
        umap=benchmark_figures("umap", BENCH.get("umap", True) and FIGURE_METHOD in METHODS),
        losses=benchmark_figures("losses", bool(LOSS_METHODS)),
    params:
        samples=[{"sample": s, "truth": samples.loc[s, "truth"]} for s in SAMPLES],
        figure_method=FIGURE_METHOD,
        loss_methods=LOSS_METHODS,
        seeds={m: method_seeds(m) for m in METHODS},
    log:
        "logs/benchmark/figures.log",
    benchmark:
        "results/benchmarks/benchmark/figures.tsv"
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/report.py"
