"""Notebook API, tools (scanpy style: keyword-only, AnnData in, keys added, ``copy=``).

    import stcore
    stcore.tl.domains(adata, n_clusters=7, seed=0)       # obs['domain'], obsm['X_graphst']
    stcore.tl.domains(adata, n_clusters=7, seed=range(5))  # the consensus of five seeds

Runs the pipeline's own steps on an AnnData with raw counts in ``X`` (or ``layer``) and
coordinates in ``obsm['spatial']``: the HVG transform (``stcore.hvg.run_hvg``), the spatial
graph (``obsp['spatial_connectivities']`` when present, e.g. from
:func:`stcore.gr.spatial_graph`, else :func:`stcore.graph.knn_graph`), a method of the
registry (``stcore.methods.fit``) and the clustering (``stcore.cluster``), with the same
defaults as the workflow's config.  The same input, settings and seed give the same labels
as the workflow (``tests/test_workflow.py``).  Several seeds give the consensus of their
labelings, as the workflow's consensus step combines a method's seeds.
"""
from __future__ import annotations

from collections.abc import Iterable

import anndata as ad
import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["domains"]


def domains(adata: ad.AnnData, *, n_clusters: int, method: str = "graphst", seed: int | Iterable[int] = 0,
            n_top_genes: int = 3000, hvg_flavor: str = "seurat_v3", values: str = "counts",
            train: dict | None = None,
            cluster: dict | None = None, layer: str | None = None, spatial_key: str = "spatial",
            spatial_dims: tuple | None = None, graph_key: str = "spatial", key_added: str = "domain",
            overwrite: bool = False, copy: bool = False) -> ad.AnnData | None:
    """Spatial domains of the spots.

    Adds ``obs[key_added]`` (categorical), ``obsm['X_<method>']`` (the embedding) and
    ``uns[key_added]`` (method, seed and every setting used).  ``train`` / ``cluster``:
    settings as under ``train:`` / ``cluster:`` in the config (``stcore/schemas/config.schema.yaml``).
    ``values``: what ``X`` (or ``layer``) holds, as the sample sheet's ``values`` column:
    ``counts``, ``normalized`` or ``log_normalized``.

    Before any work the input is checked as the workflow checks a slide
    (:mod:`stcore.validate`, the same messages): the values (NaN, negative, and with
    ``values='counts'`` and ``hvg_flavor='seurat_v3'`` whole numbers, so log-normalised values
    given as counts are refused), ``obsm[spatial_key]`` (present, finite, two columns, or the two
    named by ``spatial_dims`` when there are more), unique spot and gene ids, the ``train`` and
    ``cluster`` keys (against the config schema), ``n_clusters`` and the clustering; each
    problem is a :class:`stcore.InputError` naming the key and the fix.

    ``obs[key_added]`` is never written over when it holds a column that stcore did not write
    (an annotation, e.g. a simulated slide's truth ``domain``): that is an error naming
    ``key_added``, unless ``overwrite=True``.  A column an earlier call wrote (its settings in
    ``uns[key_added]``) is replaced.  The workflow's ``domains.h5ad`` follows the same rule
    (:func:`stcore.export.domains_adata`).

    ``seed``: one seed, or several (e.g. ``range(5)``).  With several, each seed is trained and
    clustered on its own and ``obs[key_added]`` is the consensus of their labelings
    (:func:`stcore.consensus.consensus`, the workflow's consensus step); each seed's labels go
    to ``obsm[key_added + '_seeds']`` (one column per seed), ``obsm['X_<method>']`` holds the
    first seed's embedding, and ``uns[key_added]['seed_ARI']`` is the mean pairwise ARI
    between the seeds' labelings (1: every seed gave the same domains).  On the three DLPFC
    slides the sd of a single seed's ARI over 20 seeds is 0.016-0.035, that of the consensus of
    five seeds over four disjoint sets of seeds 0.007-0.022 (``docs/compare/DEFAULTS.md``).
    """
    import scipy.sparse as sp

    from .cluster import ClusterParams, features_of, run_cluster
    from .consensus import consensus
    from .evaluate import mean_pairwise_ari
    from .export import seed_frame
    from .graph import knn_graph
    from .hvg import HVGParams, run_hvg
    from .methods import fit
    from .validate import (check_clustering, check_key, check_n_clusters, check_settings, check_slide,
                           check_values)

    seeds = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seed: one seed or several different seeds, got {seed!r}")
    # Every check before any work (the workflow's, with its messages: stcore.validate).
    train, cluster, hvg = check_settings(train=train, cluster=cluster,
                                         hvg={"n_top_genes": n_top_genes, "flavor": hvg_flavor})
    n_top_genes = hvg["n_top_genes"]
    n_clusters = check_n_clusters(n_clusters, adata.n_obs)
    check_clustering(method, cluster, n_clusters)
    check_key(adata, key_added, overwrite=overwrite)
    if layer is not None and layer not in adata.layers:
        raise InputError(f"layer '{layer}' is not in layers (layers: {list(adata.layers.keys())})",
                         fix="pass one of the layers, or layer=None for X")
    x = adata.layers[layer] if layer else adata.X
    if x is None:
        raise InputError("X is missing (no expression matrix)", fix="store the counts in X, or name a layer")
    coords = check_slide(adata, spatial_key=spatial_key, dims=spatial_dims)
    x = sp.csr_matrix(x)
    check_values(x, values, flavor=hvg_flavor)
    hvg_params = HVGParams(n_top_genes=n_top_genes, flavor=hvg_flavor, values=values)
    adata = adata.copy() if copy else adata
    counts = ad.AnnData(X=x, obs=adata.obs[[]], var=adata.var[[]])
    prepared = run_hvg(counts, hvg_params)
    key = f"{graph_key}_connectivities"
    adj = sp.csr_matrix(adata.obsp[key]) if key in adata.obsp else knn_graph(coords)
    labelings, embedding = [], None
    for s in seeds:
        result = fit(method, prepared.X, adj, coords, train, s, counts=prepared.layers["counts"],
                     n_clusters=n_clusters)
        params = ClusterParams(**cluster, seed=s)
        labelings.append(run_cluster(features_of(result, params), coords, n_clusters, params,
                                     own_labels=result.labels, owner=method))
        embedding = result.embedding if embedding is None else embedding
    labels = labelings[0] if len(seeds) == 1 else consensus(labelings)
    adata.obs[key_added] = pd.Categorical([str(v) for v in labels], categories=[str(v) for v in np.unique(labels)])
    adata.obsm[f"X_{method}"] = embedding
    info = {"method": method, "seed": seeds[0] if len(seeds) == 1 else seeds, "n_clusters": n_clusters,
            "n_top_genes": int(n_top_genes), "hvg_flavor": hvg_flavor, "values": values, "train": train,
            "cluster": cluster}
    adata.obsm.pop(f"{key_added}_seeds", None)            # an earlier call's seeds are not this call's
    if len(seeds) > 1:
        adata.obsm[f"{key_added}_seeds"] = seed_frame(dict(zip(seeds, labelings)), adata.obs_names)
        info["seed_ARI"] = mean_pairwise_ari(labelings)
    adata.uns[key_added] = info
    return adata if copy else None
