FIGURE_METHOD = config.get("benchmark", {}).get("figure_method", "graphst")
DRAW_UMAP = config.get("benchmark", {}).get("umap", True)
# Methods that train a graph model themselves: their loss curves are drawn.
LOSS_METHODS = [m for m, spec in config["methods"].items()
                if "train_from" not in spec and spec.get("model", "graphst") == "graphst"]


def _figures(kind, enabled=True):
    return [report(f"results/benchmark/figures/{kind}_{s}.png", category="Figures", subcategory=kind,
                   labels={"slide": s, "figure": kind}) for s in SAMPLES] if enabled else []


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
        domains=_figures("domains"),
        umap=_figures("umap", DRAW_UMAP and FIGURE_METHOD in METHODS),
        losses=_figures("losses", bool(LOSS_METHODS)),
    params:
        samples=[{"sample": s, "truth": samples.loc[s, "truth"]} for s in SAMPLES],
        figure_method=FIGURE_METHOD,
        loss_methods=LOSS_METHODS,
        seeds={m: method_seeds(m) for m in METHODS},
    log:
        "logs/benchmark/figures.log",
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/report.py"
