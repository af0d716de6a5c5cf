"""Snakemake step: every per-run metric (computed here once), and the domain map."""
import anndata as ad
import pandas as pd

from stcore.evaluate import domain_metrics, plot_domains, reconstruction_pearson, spatial_metrics
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
    row = run | {"spots": slide.n_obs, "genes": slide.n_vars, "domains_found": int(labels.nunique())}
    if truth is not None:
        row |= domain_metrics(truth.to_numpy(), labels.to_numpy())
    row |= spatial_metrics(slide.obsm["spatial"], labels.to_numpy())
    row["recon_r"] = reconstruction_pearson(slide.X, result.decoded, result.decoder_weight)
    prov = slide.uns.get("provenance", {})
    row |= record(seed=run["seed"], config=dict(sm.params.config), input_sha256=str(prov.get("input_sha256", "")),
                  machine_info=result.machine or None)
    plot_domains(slide.obsm["spatial"], labels.to_numpy(), None if truth is None else truth.to_numpy(),
                 title=f"{run['sample']} {run['method']}", path=sm.output.png)
    with atomic_path(sm.output.metrics) as tmp:
        pd.DataFrame([row]).to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
