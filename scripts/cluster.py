"""Snakemake step: spatial domains from the model's output (or the method's own, cluster.algorithm: own),
and how their number was set (n_clusters.json: given, or chosen by n_clusters auto with its curve)."""
import json
from pathlib import Path

import numpy as np

from stcore.cluster import ClusterParams, features_of, run_cluster
from stcore.group import slide_codes
from stcore.io import atomic_path, read_h5ad_elems, write_labels
from stcore.methods import MethodResult
from stcore.validate import check_n_clusters
from stcore.workflow import run_step


def main(sm):
    params = ClusterParams(**sm.params.cluster, seed=sm.params.seed)
    result = MethodResult.load(sm.input.npz)
    slide = read_h5ad_elems(sm.input.h5ad, "obs", "obsm/spatial")
    # qc checks it too, but a new number in the sheet reruns the clustering, not qc
    check_n_clusters(sm.params.n_clusters, len(slide["obs"]), path=sm.input.h5ad, after_qc=True)
    features = features_of(result, params)
    trained_by = Path(sm.input.npz).parent.parent.name      # results/<sample>/<method>/seed<seed>/train.npz
    choice = {}
    labels = run_cluster(features, np.asarray(slide["obsm/spatial"]), sm.params.n_clusters, params,
                         own_labels=result.labels, owner=trained_by, slides=slide_codes(slide["obs"]), record=choice)
    write_labels(sm.output.labels, slide["obs"], labels)
    with atomic_path(sm.output.n_clusters) as tmp:
        tmp.write_text(json.dumps(choice, indent=2))


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
