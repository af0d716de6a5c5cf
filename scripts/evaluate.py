"""Snakemake step: metrics against the manual annotation, and the domain map."""
import json

import anndata as ad
import numpy as np
import pandas as pd

from stcore.evaluate import domain_metrics, plot_domains
from stcore.io import atomic_path
from stcore.provenance import record
from stcore.workflow import run_step


def main(sm):
    slide = ad.read_h5ad(sm.input.h5ad, backed="r")
    labels = pd.read_csv(sm.input.labels, sep="\t", index_col="spot")["domain"].loc[slide.obs_names]
    truth = slide.obs[sm.params.truth] if sm.params.truth else None
    row = {"sample": sm.wildcards.sample, "method": sm.wildcards.method, "seed": int(sm.wildcards.seed),
           "spots": slide.n_obs, "genes": slide.n_vars, "domains_found": int(labels.nunique())}
    if truth is not None:
        row |= domain_metrics(truth.to_numpy(), labels.to_numpy())
    prov = slide.uns.get("provenance", {})
    with np.load(sm.input.train) as npz:   # the machine that trained
        trained_on = json.loads(str(npz["machine"])) if "machine" in npz else None
    row |= record(seed=int(sm.wildcards.seed), config=dict(sm.config),
                  input_sha256=str(prov.get("input_sha256", "")), machine_info=trained_on)
    row["train_s"] = float(pd.read_csv(sm.input.train_bench, sep="\t")["s"].iloc[0])
    row["cluster_s"] = float(pd.read_csv(sm.input.cluster_bench, sep="\t")["s"].iloc[0])
    plot_domains(slide.obsm["spatial"][:], labels.to_numpy(), None if truth is None else truth.to_numpy(),
                 title=f"{sm.wildcards.sample} {sm.wildcards.method}", path=sm.output.png)
    with atomic_path(sm.output.metrics) as tmp:
        pd.DataFrame([row]).to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
