"""Snakemake step: every per-run metric (computed here once), and the domain map.  A group of
slides gets one row per slide (its ARI and spatial metrics on that slide) with the group's
integration metrics on each."""
import anndata as ad
import pandas as pd

from stcore.evaluate import (domain_metrics, integration_metrics, plot_domains, reconstruction_pearson,
                             spatial_metrics)
from stcore.group import SLIDE_KEY
from stcore.io import atomic_path, read_tsv
from stcore.methods import MethodResult
from stcore.provenance import record
from stcore.workflow import run_step


def slide_row(slide, labels, truth) -> dict:
    row = {"spots": slide.n_obs, "domains_found": int(labels.nunique())}
    if truth is not None:
        row |= domain_metrics(truth.to_numpy(), labels.to_numpy())
    return row | spatial_metrics(slide.obsm["spatial"], labels.to_numpy())


def main(sm):
    slide = ad.read_h5ad(sm.input.h5ad)
    labels = read_tsv(sm.input.labels, index_col="spot")["domain"].loc[slide.obs_names]
    truth = slide.obs[sm.params.truth] if sm.params.truth else None
    result = MethodResult.load(sm.input.npz)
    run = dict(sm.params.run)
    common = {"genes": slide.n_vars, "recon_r": reconstruction_pearson(slide.X, result.decoded, result.decoder_weight)}
    prov = slide.uns.get("provenance", {})
    common |= record(seed=run["seed"], config=dict(sm.params.config), input_sha256=str(prov.get("input_sha256", "")),
                     machine_info=result.machine or None)
    if SLIDE_KEY in slide.obs:            # a group: one row per slide, in the group's colours
        slides = slide.obs[SLIDE_KEY].astype(str)
        common |= integration_metrics(result.embedding, labels.to_numpy(), slides.to_numpy(),
                                      None if truth is None else truth.to_numpy(), random_state=run["seed"])
        rows = []
        for name in slide.obs[SLIDE_KEY].cat.categories:
            on = (slides == name).to_numpy()
            rows.append(run | {"sample": name, "group": run["sample"]}
                        | slide_row(slide[on], labels[on], None if truth is None else truth[on]) | common)
    else:
        rows = [run | {"group": ""} | slide_row(slide, labels, truth) | common]
    plot_domains(slide.obsm["spatial"], labels.to_numpy(), None if truth is None else truth.to_numpy(),
                 title=f"{run['sample']} {run['method']}", path=sm.output.png,
                 slides=slide.obs[SLIDE_KEY].to_numpy() if SLIDE_KEY in slide.obs else None)
    with atomic_path(sm.output.metrics) as tmp:
        pd.DataFrame(rows).to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
