"""Notebook API, graphs (scanpy style: keyword-only, AnnData in, keys added, ``copy=``).

    import stcore
    stcore.gr.spatial_graph(adata, n_neighbors=3)          # obsp['spatial_connectivities'], ['spatial_distances']

The same function the pipeline's ``graph`` step calls (:func:`stcore.graph.knn_graph`).
"""
from __future__ import annotations

import anndata as ad

__all__ = ["spatial_graph"]


def spatial_graph(adata: ad.AnnData, *, mode: str = "knn", n_neighbors: int = 3, radius: float | None = None,
                  spatial_key: str = "spatial", spatial_dims: tuple | None = None, key_added: str = "spatial",
                  copy: bool = False) -> ad.AnnData | None:
    """The spatial neighbour graph of the spots: ``obsp[key_added + '_connectivities']`` (symmetric
    0/1, sparse), ``obsp[key_added + '_distances']`` and ``uns[key_added + '_neighbors']``, as
    squidpy names them.  ``mode``: 'knn' (``n_neighbors``) or 'radius' (``radius``).
    ``obsm[spatial_key]`` is checked as the workflow checks a slide's coordinates
    (:func:`stcore.validate.check_coordinates`: present, finite, two columns or the two named by
    ``spatial_dims``)."""
    from .export import spatial_distances
    from .graph import GraphParams, knn_graph
    from .validate import check_coordinates

    coords = check_coordinates(adata, spatial_key, dims=spatial_dims)
    adata = adata.copy() if copy else adata
    params = GraphParams(mode=mode, n_neighbors=n_neighbors, radius=radius)
    adj = knn_graph(coords, params)
    adata.obsp[f"{key_added}_connectivities"] = adj
    adata.obsp[f"{key_added}_distances"] = spatial_distances(adj, coords)
    adata.uns[f"{key_added}_neighbors"] = {
        "connectivities_key": f"{key_added}_connectivities", "distances_key": f"{key_added}_distances",
        "params": {"mode": mode, "n_neighbors": n_neighbors, "radius": -1.0 if radius is None else radius,
                   "coord_type": "generic"}}
    return adata if copy else None
