"""Snakemake step: every per-run metric (computed here once), and the domain map.  A group of
slides gets one row per slide (its ARI and spatial metrics on that slide) with the group's
integration metrics on each."""
import anndata as ad
import pandas as pd

from stcore.cluster import ClusterParams, cluster_features, correct_slides
from stcore.evaluate import expression_reconstruction_r, label_rows, plot_domains
from stcore.group import SLIDE_KEY, slide_codes
from stcore.io import atomic_path, read_tsv
from stcore.methods import MethodResult
from stcore.provenance import record
from stcore.workflow import run_step


def main(sm):
    slide = ad.read_h5ad(sm.input.h5ad)
    labels = read_tsv(sm.input.labels, index_col="spot")["domain"].loc[slide.obs_names]
    truth = slide.obs[sm.params.truth] if sm.params.truth else None
    result = MethodResult.load(sm.input.npz)
    run = dict(sm.params.run)
    prov = slide.uns.get("provenance", {})
    common = {"genes": slide.n_vars, "recon_r": expression_reconstruction_r(slide.X, result.decoded,
                                                                            result.decoder_weight)}
    common |= record(seed=run["seed"], config=dict(sm.params.config), input_sha256=str(prov.get("input_sha256", "")),
                     machine_info=result.machine or None)
    mixed = None
    if SLIDE_KEY in slide.obs:        # a group: how the slides mix in the features the clustering used
        params = ClusterParams(**sm.params.cluster, seed=run["seed"])
        mixed = cluster_features(result.embedding, result.decoded, result.decoder_weight, params)
        if params.correct == "harmony":
            mixed = correct_slides(mixed, slide_codes(slide.obs), params.seed)
    rows = [row | common for row in label_rows(slide, labels, truth, run | {"embedding": mixed})]
    plot_domains(slide.obsm["spatial"], labels.to_numpy(), None if truth is None else truth.to_numpy(),
                 title=f"{run['sample']} {run['method']}", path=sm.output.png,
                 slides=slide.obs[SLIDE_KEY].to_numpy() if SLIDE_KEY in slide.obs else None, features=mixed)
    with atomic_path(sm.output.metrics) as tmp:
        pd.DataFrame(rows).to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
