"""Snakemake step: the comparison's figures."""
import anndata as ad
import numpy as np
import pandas as pd

from stcore.io import read_tsv
from stcore.methods import MethodResult
from stcore.report import median_seed, plot_ari_boxplot, plot_losses, plot_slide_domains, plot_umap
from stcore.workflow import run_step


def main(sm):
    def run_file(name, sample, method, seed):
        return f"{sm.params.run_dir}/{name}".format(sample=sample, method=method, seed=seed)

    def labels(sample, method, seed, index):
        path = run_file("labels.tsv", sample, method, seed)
        return read_tsv(path, index_col="spot")["domain"].loc[index].to_numpy()

    table = read_tsv(sm.input.table)
    # The figures show each slide's own seed runs (a group's runs and the seeds' consensus have
    # their rows in the table and summary).
    table = table[table["group"].isna() & (table["seed"] != "consensus")].astype({"seed": int})
    plot_ari_boxplot(table, sm.output.boxplot)
    variants = list(dict.fromkeys(table["method"]))
    fig = sm.params.figure_method
    umap_out = {p.split("umap_", 1)[1][:-4]: p for p in sm.output.umap}
    loss_out = {p.split("losses_", 1)[1][:-4]: p for p in sm.output.losses}
    for row, domains_png in zip(sm.params.samples, sm.output.domains):
        sample, truth_col = row["sample"], row["truth"]
        slide = ad.read_h5ad(f"results/{sample}/hvg.h5ad", backed="r")
        coords = np.asarray(slide.obsm["spatial"][:])
        truth = slide.obs[truth_col] if truth_col else None      # the column as it is, as pl.domains reads it
        colors = slide.uns.get(f"{truth_col}_colors") if truth_col else None      # the annotation's own colours
        panels = []
        for v in variants:
            seed = median_seed(table, sample, v)
            if seed is None:
                continue
            panels.append((f"{v} (seed {seed})", labels(sample, v, seed, slide.obs_names)))
        # a slide without an annotation has no ARI: each method's lowest seed (stcore.report.median_seed)
        chosen = "median-ARI seed" if truth_col else "lowest seed: no annotation to rank the seeds by"
        plot_slide_domains(coords, truth, panels, domains_png,
                           title=f"{sample}: {'annotation and ' if truth_col else ''}found domains ({chosen} of each method)",
                           truth_colors=colors)
        if sample in umap_out:
            seed = median_seed(table, sample, fig)
            # the training its domains were clustered from: its train_from's where it sets one
            emb = MethodResult.load(run_file("train.npz", sample, sm.params.figure_source, seed)).embedding
            plot_umap(emb, truth, labels(sample, fig, seed, slide.obs_names), umap_out[sample],
                      title=f"{sample}: {fig} embedding (seed {seed}, {'median ARI' if truth_col else 'lowest seed'}"
                            + (f"; trained by {sm.params.figure_source}" if sm.params.figure_source != fig else "")
                            + ")", seed=seed,
                      truth_colors=colors)
        if sample in loss_out:
            # the runs of this config on the slide (the table's rows): not a method's files left on the
            # slide by an earlier config whose method ran there
            ran = set(zip(table["sample"].astype(str), table["method"], table["seed"]))
            curves = {(m, s): pd.read_csv(run_file("losses.tsv", sample, m, s), sep="\t")
                      for m in sm.params.loss_methods for s in sm.params.seeds[m] if (str(sample), m, s) in ran}
            plot_losses(curves, loss_out[sample], title=f"{sample}: training losses")


if "snakemake" in globals():
    run_step(snakemake, main, sample="all")  # noqa: F821
