"""Spatial neighbour graphs, all sparse.

``spatial_adjacency`` builds a symmetric 0/1 adjacency from coordinates with a KD-tree;
``gcn_norm`` gives ``D^-1/2 (A + I) D^-1/2``; ``mean_operator`` gives the row-normalised
``(A + I)`` used by the neighbourhood readout; ``store_graph`` puts a graph in an AnnData under
squidpy's keys, its edges' lengths from ``spatial_distances``.  Nothing here is N x N dense.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from .errors import InputError

if TYPE_CHECKING:             # the graph step runs without anndata
    import anndata as ad

__all__ = ["GraphMode", "GraphParams", "spatial_adjacency", "spatial_distances", "store_graph", "graph_record", "gcn_norm",
           "mean_operator", "knn_indices", "spot_spacing", "delaunay_gap"]

log = logging.getLogger(__name__)


class GraphMode(str, Enum):
    KNN = "knn"
    RADIUS = "radius"


@dataclass(frozen=True)
class GraphParams:
    """mode: 'knn' (k nearest spots, default) or 'radius' (all spots within ``radius``).
    n_neighbors: k for 'knn' (3, as the reference). radius: distance for 'radius' mode."""

    mode: GraphMode = GraphMode.KNN
    n_neighbors: int = 3
    radius: float | None = None


def knn_indices(coords: np.ndarray, k: int, *, include_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of the ``k`` nearest spots of every spot, shape (n, k).

    Ties (the six equal neighbours on a Visium hexagon) are broken by spot index, so the
    result does not depend on the KD-tree's internal order.  ``include_self`` counts the
    spot itself as its first neighbour.
    """
    coords = np.asarray(coords, dtype=np.float64)
    n = coords.shape[0]
    want = k if include_self else k + 1
    if want > n:
        raise ValueError(f"{k} neighbours asked for but the slide has {n} spots")
    tree = cKDTree(coords)
    extra = 8
    while True:
        q = min(n, want + extra)
        dist, idx = tree.query(coords, k=q)
        dist, idx = dist.reshape(n, q), idx.reshape(n, q)
        # Quantise distances so that equal distances computed in floating point compare equal.
        scale = np.median(dist[:, 1]) if q > 1 and np.median(dist[:, 1]) > 0 else 1.0
        dq = np.round(dist / scale, 9)
        # The spot itself first, then by distance, then by index.
        not_self = idx != np.arange(n)[:, None]
        order = np.lexsort((idx, dq, not_self), axis=1)
        idx = np.take_along_axis(idx, order, 1)
        dq = np.take_along_axis(dq, order, 1)
        dist = np.take_along_axis(dist, order, 1)
        # Complete only if the last candidate is strictly farther than the last one kept.
        if q == n or (dq[:, want - 1] < dq[:, -1]).all():
            break
        extra *= 2
    start = 0 if include_self else 1
    return idx[:, start:want], dist[:, start:want]


def spot_spacing(coords: np.ndarray) -> float:
    """The median distance from a spot to its nearest other spot, the slide's spacing in the units
    of its coordinates (NaN for fewer than two spots)."""
    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape[0] < 2:
        return float("nan")
    return float(np.median(knn_indices(coords, 1)[1][:, 0]))


def delaunay_gap(adj: sp.spmatrix, coords: np.ndarray, *, triangulation: bool = False) -> tuple[int, int, int] | None:
    """How far ``adj`` (a spot x spot graph, either way, self-loops ignored) falls short of a Delaunay
    triangulation of the spots at ``coords``, as squidpy's ``spatial_neighbors(delaunay=True)`` builds
    one: (edges a triangulation of these spots has beyond the graph's, the triangulation's edges,
    spots with fewer neighbours than in it), or None where the graph is not a triangulation's (more
    than 1% of its edges in no triangulation of these spots: a knn graph's, say; unless
    ``triangulation``, where its params say it is one: points on one circle, as on a square grid,
    may be triangulated otherwise once spots are removed).  Every triangulation of
    a set of points has the same number of edges, and a triangulation of some of them holds every
    Delaunay edge of the whole between the points left (an empty circle stays empty): one built
    before spots were removed lacks the edges across each gap.  Edges the graph lacks that are all
    longer than its longest (squidpy's ``percentile=`` drops the longest) count as none lacking.
    Spots at one position count as one point.  Sparse throughout (Qhull's triangulation)."""
    from scipy.spatial import Delaunay, QhullError

    # spots at one position (the osmFISH file's 476 pairs) are one point of the triangulation, which
    # Qhull gives to one of them, whichever it meets first: compared as one point
    coords = np.asarray(coords, dtype=np.float64)
    _, first, spot = np.unique(coords, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)                    # the points in the spots' order, as squidpy gave them to Qhull
    coords, spot = coords[first[order]], np.argsort(order)[np.ravel(spot)]
    n = coords.shape[0]
    if n < 4:
        return None
    try:
        indptr, indices = Delaunay(coords).vertex_neighbor_vertices
    except (QhullError, ValueError):        # every spot on one line, or too few
        return None
    tri = sp.csr_matrix((np.ones(indices.size, dtype=np.int8), indices, indptr), shape=(n, n))
    tri = ((tri + tri.T) > 0).astype(np.int8)
    point = sp.csr_matrix((np.ones(spot.size), (np.arange(spot.size), spot)), shape=(spot.size, n))
    graph = (point.T @ (sp.csr_matrix(adj) != 0).astype(np.float64) @ point).tocsr()
    graph.setdiag(0)
    graph.eliminate_zeros()
    graph = ((graph + graph.T) > 0).astype(np.int8)
    n_graph, n_tri = int(graph.nnz) // 2, int(tri.nnz) // 2
    if n_graph == 0 or (not triangulation and int((graph - graph.multiply(tri)).nnz) // 2 > 0.01 * n_graph):
        return None
    lacking = n_tri - n_graph
    if lacking > 0:
        missing = sp.triu(tri - tri.multiply(graph), k=1).tocoo()
        stored = sp.triu(graph, k=1).tocoo()
        longest = float(np.linalg.norm(coords[stored.row] - coords[stored.col], axis=1).max())
        if bool((np.linalg.norm(coords[missing.row] - coords[missing.col], axis=1) > longest * (1 + 1e-9)).all()):
            lacking = 0
    fewer = int((np.asarray(graph.sum(axis=1)).ravel() < np.asarray(tri.sum(axis=1)).ravel()).sum()) if lacking > 0 else 0
    return max(lacking, 0), n_tri, fewer


def spatial_adjacency(coords: np.ndarray, params: GraphParams = GraphParams(),
                      slides: np.ndarray | None = None) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency (no self loops), CSR float32.

    'knn': spot i and j are joined if either is among the other's ``n_neighbors`` nearest.
    'radius': joined if closer than ``radius``.
    ``slides`` (a slide code or name per spot, for a group of slides): each slide's own graph, and no
    edge between two slides (block diagonal up to the order of the spots); in 'radius' mode, slides
    whose spots lie at other spacings are warned of (:func:`_check_radius_across_slides`).
    """
    if slides is not None:
        return _per_slide(coords, params, np.asarray(slides))
    return _one_slide_adjacency(coords, params)


def _one_slide_adjacency(coords: np.ndarray, params: GraphParams, name: str | None = None) -> sp.csr_matrix:
    """:func:`spatial_adjacency` of one slide; ``name``: the slide's, in its warnings (a group's)."""
    coords = np.asarray(coords, dtype=np.float64)
    n = coords.shape[0]
    mode = GraphMode(params.mode)
    if mode is GraphMode.KNN:
        if params.radius is not None:     # (squidpy's spatial_neighbors takes a radius given alone as its mode)
            raise InputError(f"graph.radius {params.radius:g} is given, but graph.mode is knn, which joins each spot to "
                             f"its {params.n_neighbors} nearest: the radius would be ignored",
                             fix="set graph.mode radius to join the spots within it (in stcore.gr.spatial_graph: "
                                 "mode='radius'), or leave graph.radius unset")
        if n <= params.n_neighbors:     # qc checks this too, but a new k reruns the graph, not qc
            raise InputError(f"{n} spots, not more than the {params.n_neighbors} graph neighbours",
                             fix="lower graph.n_neighbors or check the slide")
        idx, _ = knn_indices(coords, params.n_neighbors)
        rows = np.repeat(np.arange(n), idx.shape[1])
        a = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, idx.ravel())), shape=(n, n))
    else:
        if params.radius is None or params.radius <= 0:
            raise InputError("graph.mode radius needs a positive graph.radius",
                             fix="set graph.radius (in the units of the slide's coordinates) or use graph.mode knn")
        tree = cKDTree(coords)
        _refuse_crowded_radius(tree, coords, params.radius)
        pairs = tree.query_pairs(params.radius, output_type="ndarray")
        a = sp.csr_matrix((np.ones(len(pairs), np.float32), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _check_radius_graph(a, coords, params.radius, name)
    a = a.maximum(a.T).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    a.sort_indices()
    return a.astype(np.float32)


def _per_slide(coords: np.ndarray, params: GraphParams, slides: np.ndarray) -> sp.csr_matrix:
    coords = np.asarray(coords, dtype=np.float64)
    rows, cols = [], []
    spacing, degree = {}, {}
    for code in np.unique(slides):
        spots = np.flatnonzero(slides == code)
        try:
            block = _one_slide_adjacency(coords[spots], params, str(code)).tocoo()
        except InputError as exc:           # named: the group's other slides may be fine
            raise InputError(f"slide {code}: {exc.problem}", fix=exc.fix) from None
        rows.append(spots[block.row])
        cols.append(spots[block.col])
        if GraphMode(params.mode) is GraphMode.RADIUS and len(spots) > 1:
            spacing[str(code)] = spot_spacing(coords[spots])
            degree[str(code)] = block.nnz / len(spots)
    _check_radius_across_slides(params, spacing, degree)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    n = coords.shape[0]
    a = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, n))
    a.sort_indices()
    return a


#: How much further apart one slide's spots may lie than another's (the median distance to a spot's
#: nearest neighbour) before one graph.radius for a group's slides is said to give them other
#: neighbourhoods: Visium's spots lie 100 um apart, 137 full-resolution pixels on DLPFC's images.
MAX_SPACING_RATIO = 1.25


def _check_radius_across_slides(params: GraphParams, spacing: dict[str, float], degree: dict[str, float]) -> None:
    """One ``graph.radius`` is one distance on every slide of a group; where their spots lie at
    spacings further apart than :data:`MAX_SPACING_RATIO` (coordinates in pixels on one slide and
    microns on another, or images of other resolutions), it joins each spot to other numbers of
    neighbours on each (DLPFC 151673 in pixels, 151674 in microns, radius 250: 11.5 and 17.1): a
    warning names them."""
    if len(spacing) < 2 or min(spacing.values()) <= 0:
        return
    if max(spacing.values()) / min(spacing.values()) <= MAX_SPACING_RATIO:
        return
    log.warning("graph.radius %g is one distance on every slide of the group, but their spots lie at other spacings "
                "(median distance to a spot's nearest neighbour: %s), so it joins each spot to other numbers of "
                "neighbours (on average: %s): coordinates in other units on each slide (pixels, microns)? Fix: store "
                "every slide's coordinates in one unit, or use graph.mode knn (each spot's graph.n_neighbors nearest "
                "on every slide)", params.radius, ", ".join(f"{k} {v:.4g}" for k, v in spacing.items()),
                ", ".join(f"{k} {v:.1f}" for k, v in degree.items()))


MAX_RADIUS_NEIGHBOURS = 200     # mean neighbours a radius graph may give a spot (knn: 3; BANKSY: 15)


def _refuse_crowded_radius(tree: cKDTree, coords: np.ndarray, radius: float) -> None:
    """A radius in the wrong units (microns for pixels) joins each spot to thousands: the pairs
    alone would fill memory on a large slide.  Refused before they are listed when up to 2,000
    spots (drawn with a fixed seed) have on average more than :data:`MAX_RADIUS_NEIGHBOURS`
    neighbours within ``radius``."""
    n = coords.shape[0]
    drawn = coords if n <= 2000 else coords[np.random.default_rng(0).choice(n, 2000, replace=False)]
    mean = float(np.mean(tree.query_ball_point(drawn, radius, return_length=True))) - 1    # less the spot itself
    if mean <= MAX_RADIUS_NEIGHBOURS:
        return
    nearest = spot_spacing(coords)
    raise InputError(f"graph.radius {radius:g} joins each spot to about {mean:.0f} others (the median distance to a "
                     f"spot's nearest neighbour is {nearest:.4g}; at most {MAX_RADIUS_NEIGHBOURS} are taken)",
                     fix=f"lower graph.radius to a few times {nearest:.4g} (it is in the units of the slide's "
                         "coordinates), or use graph.mode knn")


def _check_radius_graph(a: sp.csr_matrix, coords: np.ndarray, radius: float, name: str | None = None) -> None:
    """A radius graph without edges would train with no spatial information: refused; spots
    left without a neighbour are counted in the log (naming the slide ``name`` where given)."""
    degree = np.asarray((a + a.T).getnnz(axis=1)).ravel()
    alone = int((degree == 0).sum())
    if alone == 0:
        return
    nearest = spot_spacing(coords)
    if alone == coords.shape[0]:
        raise InputError(f"graph.radius {radius:g} joins no two spots (the median distance to a spot's nearest "
                         f"neighbour is {nearest:.4g})",
                         fix=f"raise graph.radius above {nearest:.4g} (it is in the units of the slide's "
                             "coordinates), or use graph.mode knn")
    log.warning("%sgraph.radius %g leaves %d of %d spots without a neighbour (median nearest-neighbour "
                "distance %.4g)", f"slide {name}: " if name else "", radius, alone, coords.shape[0], nearest)


def spatial_distances(adj: sp.spmatrix, coords: np.ndarray) -> sp.csr_matrix:
    """The edges of ``adj`` weighted by the Euclidean distance between their spots (sparse)."""
    a = sp.coo_matrix(adj)
    xy = np.asarray(coords, dtype=np.float64)
    d = np.linalg.norm(xy[a.row] - xy[a.col], axis=1)
    return sp.csr_matrix((d, (a.row, a.col)), shape=a.shape)


def moved_edges(distances: sp.spmatrix, coords: np.ndarray, rtol: float = 1e-2) -> tuple[int, int]:
    """(the edges of a stored graph whose length, ``distances`` (as :func:`spatial_distances` and
    squidpy's generic graphs store them), is not their spots' distance at ``coords``, the edges
    compared).  One scale for every edge is allowed: the same positions in other units, or moved,
    turned or mirrored as a whole, keep every neighbour; lengths within ``rtol`` of it pass (distances
    computed in single precision from coordinates of 1e5).  Edges of length 0 are not compared."""
    d = sp.coo_matrix(distances)
    keep = d.data > 0
    if not keep.any():
        return 0, 0
    stored = np.asarray(d.data[keep], dtype=np.float64)
    xy = np.asarray(coords, dtype=np.float64)
    now = np.linalg.norm(xy[d.row[keep]] - xy[d.col[keep]], axis=1)
    scale = float(np.median(now / stored))
    return int((np.abs(now - scale * stored) > rtol * scale * stored).sum()), int(stored.size)


def graph_record(mode: str = "knn", n_neighbors: int = 3, radius: float | None = None, *,
                 spatial_key: str = "spatial", spatial_dims=None) -> dict:
    """How a graph of :func:`spatial_adjacency` was built, as its ``params`` in
    ``uns['spatial_neighbors']`` (:func:`store_graph`): its ``mode``, ``n_neighbors`` and ``radius``
    (-1 when unset), and the coordinates it was built from.  :func:`stcore.tl.domains` reads them to
    judge a stored graph: a knn graph gives every spot at least ``n_neighbors``; a graph whose
    params name neither is taken for squidpy's Delaunay triangulation."""
    mode = mode.value if isinstance(mode, GraphMode) else str(mode)
    return ({"mode": mode, "n_neighbors": n_neighbors, "radius": -1.0 if radius is None else radius,
             "spatial_key": spatial_key} | ({"spatial_dims": list(spatial_dims)} if spatial_dims is not None else {}))


def store_graph(adata: ad.AnnData, adj: sp.spmatrix, coords: np.ndarray, *, key_added: str = "spatial",
                params: dict | None = None) -> None:
    """The spatial graph ``adj`` in ``adata`` as ``squidpy.gr.spatial_neighbors`` stores one:
    ``obsp[key_added + '_connectivities']`` (0/1, float32 CSR), ``obsp[key_added + '_distances']``
    (the edges' Euclidean lengths) and ``uns[key_added + '_neighbors']`` naming them, with the
    graph's ``params`` (``coord_type`` 'generic')."""
    adata.obsp[f"{key_added}_connectivities"] = sp.csr_matrix(adj, dtype=np.float32)
    adata.obsp[f"{key_added}_distances"] = spatial_distances(adj, coords)
    adata.uns[f"{key_added}_neighbors"] = {"connectivities_key": f"{key_added}_connectivities",
                                           "distances_key": f"{key_added}_distances",
                                           "params": {"coord_type": "generic"} | dict(params or {})}


def gcn_norm(adj: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 (A + I) D^-1/2`` with D the degrees of ``A + I``; float32 CSR."""
    a = sp.csr_matrix(adj, dtype=np.float64) + sp.eye(adj.shape[0], format="csr")
    d = np.asarray(a.sum(axis=1)).ravel()
    dinv = 1.0 / np.sqrt(d)
    out = sp.diags(dinv) @ a @ sp.diags(dinv)
    out = sp.csr_matrix(out, dtype=np.float32)
    out.sort_indices()
    return out


def mean_operator(adj: sp.spmatrix) -> sp.csr_matrix:
    """Row-normalised ``A + I``: row i averages spot i and its neighbours; float32 CSR."""
    a = sp.csr_matrix(adj, dtype=np.float64) + sp.eye(adj.shape[0], format="csr")
    a.data[:] = 1.0
    d = np.asarray(a.sum(axis=1)).ravel()
    out = sp.csr_matrix(sp.diags(1.0 / d) @ a, dtype=np.float32)
    out.sort_indices()
    return out


#: The graph job judges the expression's spatial pattern (:func:`check_spatial_pattern`) where the
#: slide's features hold at most this many stored values (about 0.6 GB read, 1 GB while judged).
PATTERN_MAX_VALUES = 50_000_000


def check_spatial_pattern(h5ad: str, adj: sp.spmatrix, *, sample: str | None = None) -> float | None:
    """The graph job's form of ``tl.domains``' check (:func:`stcore.validate.warn_no_spatial_pattern`):
    warn where the features of ``h5ad`` (the hvg step's output) show no spatial pattern over the graph
    ``adj``, as coordinates stored in another order than the spots leave them.  Slides whose features
    hold more than :data:`PATTERN_MAX_VALUES` stored values are not judged (None), so the job's memory
    stays that of the graph."""
    import h5py

    from .io import read_h5ad_elems
    from .validate import warn_no_spatial_pattern

    with h5py.File(h5ad, "r") as f:
        x = f["X"]
        stored = x["data"].shape[0] if isinstance(x, h5py.Group) else x.size
    if stored > PATTERN_MAX_VALUES:
        log.info("the expression's spatial pattern is not judged: %d stored values, more than %d", stored,
                 PATTERN_MAX_VALUES)
        return None
    return warn_no_spatial_pattern(read_h5ad_elems(h5ad, "X")["X"], adj,
                                   path=f"sample '{sample}'" if sample else None)
