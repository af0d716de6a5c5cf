"""Notebook API, graphs (scanpy style: keyword-only, AnnData in, keys added, ``copy=``).

    import stcore
    stcore.gr.spatial_graph(adata, n_neighbors=3)          # obsp['spatial_connectivities'], ['spatial_distances']

The same function the pipeline's ``graph`` step calls (:func:`stcore.graph.spatial_adjacency`).
"""
from __future__ import annotations

import anndata as ad

__all__ = ["spatial_graph"]


def spatial_graph(adata: ad.AnnData, *, mode: str = "knn", n_neighbors: int = 3, radius: float | None = None,
                  spatial_key: str = "spatial", spatial_dims: tuple | None = None, key_added: str = "spatial",
                  copy: bool = False) -> ad.AnnData | None:
    """The spatial neighbour graph of the spots, as the workflow's ``graph`` step builds it.

    ``obsm[spatial_key]`` is checked as the workflow checks a slide's coordinates
    (:func:`stcore.validate.check_coordinates`: present, finite, two columns or the two named by
    ``spatial_dims``, of one slide: several slides' spots in one object are refused,
    :func:`stcore.validate.check_one_slide`), and the spot ids as ``tl.domains`` checks them
    (:func:`stcore.validate.check_ids`: unique, so that the graph's rows name one spot each).
    The graph is symmetric and sparse (KD-tree; ties on the Visium hexagon broken by spot index);
    nothing N x N dense is formed.

    Parameters
    ----------
    adata : AnnData
        Spots with coordinates in ``obsm[spatial_key]``.
    mode : str, default 'knn'
        ``'knn'``: spots i and j are joined when either is among the other's ``n_neighbors``
        nearest; ``'radius'``: joined when closer than ``radius``.
    n_neighbors : int, default 3
        Neighbours per spot in ``'knn'`` mode (3, as GraphST).
    radius : float, default None
        Distance in ``'radius'`` mode, in the units of the coordinates (required there).
    spatial_key : str, default 'spatial'
        ``obsm`` key of the coordinates.
    spatial_dims : tuple, default None
        The two columns of ``obsm[spatial_key]`` to use when it has more than two.
    key_added : str, default 'spatial'
        Prefix of the keys written (squidpy's names with the default).
    copy : bool, default False
        Return a copy with the graph instead of writing into ``adata`` (of a slide opened with
        ``read_h5ad(..., backed='r')``: the slide in memory).

    Returns
    -------
    AnnData or None
        The copy when ``copy=True``, else None; the graph is in
        ``obsp[key_added + '_connectivities']`` (0/1, float32 CSR),
        ``obsp[key_added + '_distances']`` (Euclidean length of each edge) and
        ``uns[key_added + '_neighbors']`` (the two keys and ``params``: ``mode``,
        ``n_neighbors``, ``radius`` (-1 when unset), ``coord_type`` 'generic', ``spatial_key``
        and ``spatial_dims`` where given: ``tl.domains`` with other coordinates refuses the
        graph; where spots share a position, ``shared_positions``: the warning given, which
        ``tl.domains`` on this graph does not give again), as
        ``squidpy.gr.spatial_neighbors`` stores one, so squidpy's ``nhood_enrichment``,
        ``centrality_scores`` or ``spatial_autocorr`` run on it.
    """
    from .validate import check_coordinates, check_ids, check_in_place, warn_shared_positions

    if not copy:
        check_in_place(adata, "stcore.gr.spatial_graph")
    coords = check_coordinates(adata, spatial_key, dims=spatial_dims, warn_shared=False)
    check_ids(adata, genes=False)
    shared = warn_shared_positions(adata, coords, spatial_key)
    if copy:        # a slide opened with read_h5ad(backed='r'): anndata copies it only to a file
        adata = adata.to_memory() if getattr(adata, "isbacked", False) else adata.copy()
    add_graph(adata, coords, mode=mode, n_neighbors=n_neighbors, radius=radius, key_added=key_added,
              shared_positions=shared, spatial_key=spatial_key, spatial_dims=spatial_dims)
    return adata if copy else None


def add_graph(adata: ad.AnnData, coords, *, mode: str = "knn", n_neighbors: int = 3, radius: float | None = None,
              key_added: str = "spatial", shared_positions: str | None = None, spatial_key: str = "spatial",
              spatial_dims: tuple | None = None) -> None:
    """:func:`spatial_graph` on coordinates already checked (``tl.domains`` checks them once).
    ``shared_positions``: the warning given of spots that share a position
    (:func:`stcore.validate.warn_shared_positions`), kept in ``uns[key_added + '_neighbors']``
    so that ``tl.domains`` on this graph does not give it again.  ``spatial_key`` (and
    ``spatial_dims`` where given): where the coordinates came from, kept in the graph's ``params``
    so that ``tl.domains`` with other coordinates does not take this graph for theirs."""
    from .graph import GraphParams, graph_record, spatial_adjacency, store_graph

    adj = spatial_adjacency(coords, GraphParams(mode=mode, n_neighbors=n_neighbors, radius=radius))
    store_graph(adata, adj, coords, key_added=key_added,
                params=graph_record(mode, n_neighbors, radius, spatial_key=spatial_key, spatial_dims=spatial_dims))
    if shared_positions:
        adata.uns[f"{key_added}_neighbors"]["shared_positions"] = shared_positions
