"""Notebook API, tools (scanpy style: keyword-only, AnnData in, keys added, ``copy=``).

    import stcore
    stcore.tl.domains(adata, n_clusters=7, seed=0)       # obs['domain'], obsm['X_graphst']

Runs the pipeline's own steps on an AnnData with raw counts in ``X`` (or ``layer``) and
coordinates in ``obsm['spatial']``: the HVG transform (``stcore.hvg.run_hvg``), the spatial
graph (``obsp['spatial_connectivities']`` when present, e.g. from
:func:`stcore.gr.spatial_graph`, else :func:`stcore.graph.knn_graph`), a method of the
registry (``stcore.methods.fit``) and the clustering (``stcore.cluster``), with the same
defaults as the workflow's config.  The same input, settings and seed give the same labels
as the workflow (``tests/test_api.py``).
"""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

__all__ = ["domains"]


def domains(adata: ad.AnnData, *, n_clusters: int, method: str = "graphst", seed: int = 0,
            n_top_genes: int = 3000, hvg_flavor: str = "seurat_v3", values: str = "counts",
            train: dict | None = None,
            cluster: dict | None = None, layer: str | None = None, spatial_key: str = "spatial",
            graph_key: str = "spatial", key_added: str = "domain", copy: bool = False) -> ad.AnnData | None:
    """Spatial domains of the spots.

    Adds ``obs[key_added]`` (categorical), ``obsm['X_<method>']`` (the embedding) and
    ``uns[key_added]`` (method, seed and every setting used).  ``train`` / ``cluster``:
    settings as under ``train:`` / ``cluster:`` in the config (``schemas/config.schema.yaml``).
    ``values``: what ``X`` (or ``layer``) holds, as the sample sheet's ``values`` column:
    ``counts``, ``normalized`` or ``log_normalized``.
    """
    import scipy.sparse as sp

    from .cluster import ClusterParams, features_of, run_cluster
    from .graph import knn_graph
    from .hvg import HVGParams, run_hvg
    from .methods import fit

    adata = adata.copy() if copy else adata
    counts = ad.AnnData(X=adata.layers[layer] if layer else adata.X, obs=adata.obs[[]], var=adata.var[[]])
    counts.X = sp.csr_matrix(counts.X)
    prepared = run_hvg(counts, HVGParams(n_top_genes=n_top_genes, flavor=hvg_flavor, values=values))
    coords = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    key = f"{graph_key}_connectivities"
    adj = sp.csr_matrix(adata.obsp[key]) if key in adata.obsp else knn_graph(coords)
    train = dict(train or {})
    result = fit(method, prepared.X, adj, coords, train, seed, counts=prepared.layers["counts"],
                 n_clusters=n_clusters)
    cluster = dict(cluster or {})
    params = ClusterParams(**cluster, seed=seed)
    labels = run_cluster(features_of(result, params), coords, n_clusters, params, own_labels=result.labels,
                         owner=method)
    adata.obs[key_added] = pd.Categorical([str(v) for v in labels], categories=[str(v) for v in np.unique(labels)])
    adata.obsm[f"X_{method}"] = result.embedding
    adata.uns[key_added] = {"method": method, "seed": int(seed), "n_clusters": int(n_clusters),
                            "n_top_genes": int(n_top_genes), "hvg_flavor": hvg_flavor, "values": values, "train": train,
                            "cluster": cluster}
    return adata if copy else None
