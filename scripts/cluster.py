"""Snakemake step: spatial domains from the model's output (or the method's own, cluster.method: own)."""
from pathlib import Path

import numpy as np

from stcore.cluster import ClusterParams, features_of, run_cluster
from stcore.group import slide_codes
from stcore.io import read_h5ad_elems, write_labels
from stcore.methods import MethodResult
from stcore.workflow import run_step


def main(sm):
    params = ClusterParams(**sm.params.cluster, seed=sm.params.seed)
    result = MethodResult.load(sm.input.npz)
    slide = read_h5ad_elems(sm.input.h5ad, "obs", "obsm/spatial")
    features = features_of(result, params)
    trained_by = Path(sm.input.npz).parent.parent.name      # results/<sample>/<method>/seed<seed>/train.npz
    labels = run_cluster(features, np.asarray(slide["obsm/spatial"]), sm.params.n_clusters, params,
                         own_labels=result.labels, owner=trained_by, slides=slide_codes(slide["obs"]))
    write_labels(sm.output.labels, slide["obs"], labels)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
