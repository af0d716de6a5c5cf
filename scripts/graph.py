"""Snakemake step: the spatial neighbour graph."""
import json

import numpy as np
import scipy.sparse as sp

from stcore.graph import GraphParams, check_spatial_pattern, spatial_adjacency
from stcore.group import slide_names
from stcore.io import atomic_path, read_h5ad_elems
from stcore.workflow import run_step


def main(sm):
    slide = read_h5ad_elems(sm.input.h5ad, "obs", "obsm/spatial")
    params = GraphParams(**sm.params.graph)
    adj = spatial_adjacency(np.asarray(slide["obsm/spatial"]), params, slides=slide_names(slide["obs"]))  # per slide of a group
    check_spatial_pattern(sm.input.h5ad, adj, sample=sm.wildcards.sample)   # coordinates in another order than the spots
    with atomic_path(sm.output.npz) as tmp:
        with open(tmp, "wb") as fh:
            sp.save_npz(fh, adj)
    info = dict(sm.params.graph, n_spots=adj.shape[0], n_edges=int(adj.nnz // 2),
                mean_degree=float(adj.nnz / adj.shape[0]))
    with atomic_path(sm.output.params) as tmp:
        tmp.write_text(json.dumps(info, indent=2))


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
