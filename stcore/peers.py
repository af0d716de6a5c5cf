"""Published spatial-domain methods ("peers") run from their own packages, as registry entries.

Each ``fit_<name>(x, adj, coords, params, seed, *, counts, n_clusters) -> MethodResult``
imports its package inside the function, from the optional extra ``peers``
(``pip install -e '.[peers]'``, exact pins in ``pyproject.toml``; conda: ``envs/peers.yaml``).
No code of these packages is copied here; GraphST in particular is AGPL-3.0 and is only
imported.  All run on the CPU.

Input.  The peers do their own preprocessing, as their tutorials do, from ``counts``: the raw
counts of the pipeline's highly variable genes (``hvg.h5ad`` ``layers['counts']``: seurat_v3
on the QC'd counts, ``hvg.n_top_genes`` genes, 3000 by default, which is the selection GraphST's
and STAGATE's tutorials make themselves).  Their own graphs are built from ``coords``; the
pipeline's ``x`` and ``adj`` are not used.  One difference from the tutorials remains: the
library size that ``normalize_total`` divides by is the spot's total over the selected genes
(the same as the pipeline's own transform), not over every gene.  On a slide of log-normalised
values ``counts`` holds the normalised values they are the log of (:func:`stcore.methods.fit`
unlogs them), which the same steps take as they take the counts.

Settings.  A peer reads its settings from the ``peer:`` block of its method's ``train:``
settings (``methods: {st: {model: stagate, train: {peer: {n_epochs: 500}}}}``); the keys are
those of :data:`stcore.registry.PEER_SETTINGS` (here :data:`GRAPHST_PKG_DEFAULTS`,
:data:`STAGATE_DEFAULTS`, ...), named as the packages name their arguments, with the defaults of
each method's tutorial.  An unknown key is an error (the workflow's plan refuses it at parse time).  The other ``train:`` keys (the pipeline's own model's) are ignored,
except ``threads``.  ``seed`` seeds Python's, numpy's and torch's generators and is passed as
the package's own seed argument.

Own clustering.  ``MethodResult.labels`` holds a peer's own domains where its published
pipeline can make them without R (SpaGCN always; GraphST with its Leiden search); the
pipeline's ``cluster.algorithm: own`` reports them, any other cluster method clusters
``embedding`` as for every method.  ``n_clusters`` (the sample sheet's) is the number of
domains they search for.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import logging
import random
import time
import warnings

import numpy as np

from .errors import InputError
from .registry import PEER_SETTINGS, peer_settings_fix, unknown_peer_settings

__all__ = ["PEERS_INSTALL", "CELLCHARTER_INSTALL", "BANKSY_INSTALL", "GRAPHST_PKG_DEFAULTS", "STAGATE_DEFAULTS",
           "SPAGCN_DEFAULTS", "CELLCHARTER_DEFAULTS", "BANKSY_DEFAULTS", "fit_graphst_pkg", "fit_stagate", "fit_spagcn",
           "fit_cellcharter", "fit_banksy", "settings_of", "check", "PEER_MODULES", "banksy_kind", "banksy_memory_mb",
           "stagate_radius", "grid_shape"]

log = logging.getLogger(__name__)

PEERS_INSTALL = "pip install -e '.[peers]'"
CELLCHARTER_INSTALL = "pip install -e '.[cellcharter]'"
BANKSY_INSTALL = "pip install -e '.[banksy]'"

# Each peer's train.peer keys and their defaults (its package's, as its tutorial sets them), with the
# source of each: stcore/registry.py, PEER_SETTINGS, which the workflow's plan checks a config against.
GRAPHST_PKG_DEFAULTS = PEER_SETTINGS["graphst_pkg"]
STAGATE_DEFAULTS = PEER_SETTINGS["stagate"]
SPAGCN_DEFAULTS = PEER_SETTINGS["spagcn"]
CELLCHARTER_DEFAULTS = PEER_SETTINGS["cellcharter"]
BANKSY_DEFAULTS = PEER_SETTINGS["banksy"]


def settings_of(model: str, params: dict) -> dict:
    """The settings a peer's fit reads: its package's defaults (:data:`stcore.registry.PEER_SETTINGS`)
    with the config's ``train.peer`` on top; an unknown key is refused, naming the keys it takes (the
    workflow's plan refuses the same keys at parse time)."""
    given = dict(params.get("peer") or {})
    unknown = unknown_peer_settings(model, given)
    if unknown:
        raise InputError(f"method '{model}': unknown train.peer setting(s) {unknown}",
                         fix=peer_settings_fix(model, unknown))
    return {**PEER_SETTINGS[model], **given}


# The modules each peer's fit imports (its package and what it needs beside it), imported by check() before it
# trains: a package not installed, or one that fails on import, is refused before any method of a call trains.
PEER_MODULES: dict[str, tuple[str, ...]] = {
    "graphst_pkg": ("scanpy", "torch", "ot", "skmisc", "GraphST.GraphST", "GraphST.utils"),  # POT: GraphST
    # imports it without declaring it; scikit-misc: its seurat_v3 selection
    "stagate": ("scanpy", "torch", "torch_geometric", "STAGATE_pyG"),
    "spagcn": ("scanpy", "torch", "SpaGCN"),
    "cellcharter": ("scanpy", "squidpy", "cellcharter"),
    "banksy": ("scanpy", "banksy.initialize_banksy", "banksy.embed_banksy", "banksy.main", "banksy.cluster_methods",
               "banksy_utils.umap_pca", "leidenalg"),
}


def _import(module: str, model: str):
    """``module``, imported for peer ``model``; one that cannot be (not installed, or failing on import: a broken
    install, another module of its name first on the path) is refused naming it, where it was found, and the
    install of the method's extra."""
    try:
        with warnings.catch_warnings():       # banksy's cluster module warns that R's mclust is absent
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as exc:
        from .registry import facts

        top = module.split(".")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        found = f" (found at {spec.origin}: check that it is the installed package)" if spec and spec.origin else ""
        raise InputError(f"method '{model}' needs '{module}', which cannot be imported ({exc})",
                         fix=f"{facts(model).install}{found}") from None


def _imports(model: str) -> dict:
    """The modules peer ``model``'s fit uses (:data:`PEER_MODULES`), by name."""
    return {module: _import(module, model) for module in PEER_MODULES[model]}


def check(model: str, params: dict, coords, *, n_genes: int, n_clusters=None) -> dict:
    """What peer ``model``'s fit would refuse that is known before it trains: its settings (unknown keys,
    values it does not take), the modules it imports, and the slide (``coords``, ``n_genes`` the genes it is
    given): CellCharter's spots on one line, SpaGCN's 50 genes or fewer, BANKSY's matrix larger than the memory
    free.  Each fit calls it first; :func:`stcore.tl.domains` calls it (:func:`stcore.methods.check_fit`) for
    every method of the call before any of them trains, so that a refusal does not come after the others'
    training.  Returns the settings the fit reads (:func:`settings_of`)."""
    s = settings_of(model, params)
    _imports(model)
    _BEFORE[model](s, np.asarray(coords, dtype=np.float64), int(n_genes), n_clusters)
    return s


def _own_clustering(model: str, s: dict, known: str) -> None:
    if s["own_clustering"] not in ("leiden", "none", None):
        raise InputError(f"method '{model}': own_clustering '{s['own_clustering']}' is not known",
                         fix=f"use leiden ({known}) or none")


def _before_graphst_pkg(s, xy, n_genes, n_clusters):
    _own_clustering("graphst_pkg", s, "GraphST's R-free search")
    if s["own_clustering"] == "leiden" and n_clusters is not None:
        _need_clusters("graphst_pkg", n_clusters)


def _before_stagate(s, xy, n_genes, n_clusters):
    _stagate_radius_joins(s, xy)


def _before_spagcn(s, xy, n_genes, n_clusters):
    _need_clusters("spagcn", n_clusters)
    if n_genes <= 50:
        raise InputError(f"method 'spagcn': its resolution search (SpaGCN.search_res) takes 50 principal "
                         f"components, so it needs more than 50 genes; this slide has {n_genes}",
                         fix="leave spagcn out for this slide (the method's samples: in the config; in tl.domains, a "
                             "method= without it)")
    if s["refine_shape"] not in ("auto", "hexagon", "square", "none"):
        raise InputError(f"method 'spagcn': refine_shape '{s['refine_shape']}' is not known",
                         fix="use auto, hexagon, square or none")


def _before_cellcharter(s, xy, n_genes, n_clusters):
    if n_clusters is not None:
        _need_clusters("cellcharter", n_clusters)
    _check_not_on_a_line(xy)


def _before_banksy(s, xy, n_genes, n_clusters):
    _own_clustering("banksy", s, "its R-free Leiden search")
    if s["own_clustering"] == "leiden" and n_clusters is not None:
        _need_clusters("banksy", n_clusters)
    if s["kind"] != "auto" and str(s["kind"]) not in BANKSY_BY_KIND:
        raise InputError(f"method 'banksy': kind '{s['kind']}' is not known", fix="use auto, spots or cells")
    if s["lambda"] is not None and not 0.0 <= float(s["lambda"]) <= 1.0:
        raise InputError(f"method 'banksy': lambda {float(s['lambda']):g} is outside [0, 1]",
                         fix="set train.peer.lambda in [0, 1]")
    used = min(n_genes, int(s["n_top_genes"])) if s["n_top_genes"] else n_genes     # its own selection's genes
    _check_banksy_memory(xy.shape[0], used, int(s["max_m"]))


_BEFORE = {"graphst_pkg": _before_graphst_pkg, "stagate": _before_stagate, "spagcn": _before_spagcn,
           "cellcharter": _before_cellcharter, "banksy": _before_banksy}


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{dist} {version(dist)}"
    except PackageNotFoundError:
        return dist


def _start(params: dict, seed: int) -> None:
    """Threads as the train rule asks, and every generator seeded."""
    import torch

    if params.get("threads"):
        torch.set_num_threads(int(params["threads"]))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _LogLines(io.TextIOBase):
    """A text stream whose lines go to the log (debug level)."""

    def __init__(self, prefix: str):
        self.prefix, self.buf = prefix, ""

    def write(self, s: str) -> int:
        self.buf += s.replace("\r", "\n")
        *lines, self.buf = self.buf.split("\n")
        for line in lines:
            if line.strip():
                log.debug("%s: %s", self.prefix, line.rstrip())
        return len(s)


@contextlib.contextmanager
def _quiet(prefix: str):
    """The packages print progress and searches; send it to the debug log."""
    with contextlib.redirect_stdout(_LogLines(prefix)), contextlib.redirect_stderr(_LogLines(prefix)):
        yield


def _counts_adata(counts, coords, name: str):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    _n_genes(counts, name)
    x = sp.csr_matrix(counts, dtype=np.float32)
    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape[0] != x.shape[0]:
        raise InputError(f"method '{name}': {x.shape[0]} spots of counts but {coords.shape[0]} coordinates")
    a = ad.AnnData(X=x, obs=pd.DataFrame(index=[f"spot{i}" for i in range(x.shape[0])]),
                   var=pd.DataFrame(index=[f"gene{j}" for j in range(x.shape[1])]))
    a.obsm["spatial"] = coords
    return a


def _n_genes(counts, name: str) -> int:
    """The number of genes of ``counts``; none given is refused."""
    if counts is None:
        raise InputError(f"method '{name}' preprocesses raw counts itself and was given none",
                         fix="pass counts= (the raw counts of the selected genes) to stcore.methods.fit")
    return int(counts.shape[1])


def _need_clusters(name: str, n_clusters) -> int:
    if n_clusters is None or isinstance(n_clusters, str) or int(n_clusters) < 1:
        raise InputError(f"method '{name}' searches for a number of domains and was given "
                         f"{'none' if n_clusters is None else repr(n_clusters)}",
                         fix="pass n_clusters= (the sample sheet's n_clusters, a whole number) to stcore.methods.fit")
    return int(n_clusters)


def _numpy_machine() -> dict[str, str]:
    """:func:`stcore.provenance.machine`'s columns for a method that computes with numpy alone:
    the CPU model, numpy's BLAS (threadpoolctl) and no torch kernels, without importing torch
    (about 2 CPU seconds a job)."""
    from threadpoolctl import threadpool_info

    from .provenance import _cpu_model

    blas = [f"{i.get('internal_api', '?')} {i.get('version') or ''}".strip() for i in threadpool_info()
            if i.get("user_api") == "blas"]
    return {"cpu_model": _cpu_model(), "cpu_kernels": "none (no torch)", "blas": ", ".join(blas) or "unknown",
            "mkl_cnr": "none (no torch)"}


def _result(embedding, labels, t0: float, dist: str, *, torch: bool = True):
    from .methods import MethodResult
    from .provenance import machine

    info = (machine() if torch else _numpy_machine()) | {"method_package": _version(dist)}
    return MethodResult(embedding=np.asarray(embedding, dtype=np.float32),
                        labels=None if labels is None else np.asarray(labels, dtype=np.int64),
                        seconds=time.perf_counter() - t0, device="cpu", machine=info)


# ---------------------------------------------------------------------------------------------
# GraphST (reference package)
# ---------------------------------------------------------------------------------------------

def fit_graphst_pkg(x, adj, coords, params: dict, seed: int, *, counts=None, n_clusters=None):
    """GraphST 1.1.1 (Long et al., Nat Commun 2023), the authors' package (AGPL-3.0, imported only).

    Preprocessing as GraphST's own ``preprocess()`` (normalize_total 1e4, log1p, scale without
    centring, max 10) on the HVG counts, whose selection (seurat_v3) is GraphST's own, so it
    is not repeated; GraphST builds its 3-nearest-neighbour graph from ``coords`` and trains
    (600 epochs, lr 1e-3, 64-d latent, alpha 10, beta 1; ``random_seed=seed``, which runs
    GraphST's ``fix_seed``: Python, numpy and torch seeds, cudnn deterministic).

    ``embedding`` is GraphST's output ``obsm['emb']``: its *reconstruction* of the expression
    (spots x genes), not the 64-d latent, because that is what GraphST clusters (PCA 20, then
    R mclust EEE); the pipeline's shared cluster step does the same (PCA 20 + its R-free mclust).
    ``labels``: GraphST's own R-free alternative, ``GraphST.utils.clustering(method='leiden')``
    (its resolution scan from ``end`` down to ``start`` until ``n_clusters`` domains, no
    refinement), when ``own_clustering`` is ``leiden``, ``n_clusters`` is given and a resolution
    gives it; else None (without ``n_clusters`` the search is skipped: the output does not
    depend on it).
    """
    s = check("graphst_pkg", params, coords, n_genes=_n_genes(counts, "graphst_pkg"), n_clusters=n_clusters)
    t0 = time.perf_counter()
    modules = _imports("graphst_pkg")
    sc, torch, graphst = modules["scanpy"], modules["torch"], modules["GraphST.GraphST"]
    _start(params, seed)
    a = _counts_adata(counts, coords, "graphst_pkg")
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.scale(a, zero_center=False, max_value=10)
    a.var["highly_variable"] = True
    with _quiet("GraphST"):
        model = graphst.GraphST(a, device=torch.device("cpu"), epochs=int(s["epochs"]),
                                learning_rate=float(s["learning_rate"]), weight_decay=float(s["weight_decay"]),
                                dim_output=int(s["dim_output"]), alpha=float(s["alpha"]), beta=float(s["beta"]),
                                random_seed=int(seed), datatype=str(s["datatype"]))
        out = model.train()
    log.info("GraphST: %d epochs in %.1f s, output %s", s["epochs"], time.perf_counter() - t0, out.obsm["emb"].shape)
    labels = None
    if s["own_clustering"] == "leiden" and n_clusters is not None:
        k = _need_clusters("graphst_pkg", n_clusters)
        clustering = modules["GraphST.utils"].clustering
        try:
            with _quiet("GraphST clustering"):
                clustering(out, n_clusters=k, radius=int(s["radius"]), key="emb", method="leiden",
                           start=float(s["start"]), end=float(s["end"]), increment=float(s["increment"]),
                           refinement=bool(s["refinement"]))
            labels = out.obs["domain"].astype(int).to_numpy()
        except AssertionError as exc:     # its resolution search found no resolution
            log.warning("GraphST's Leiden search found no resolution giving %d domains (%s): no own labels", k, exc)
    return _result(out.obsm["emb"], labels, t0, "GraphST")


# ---------------------------------------------------------------------------------------------
# STAGATE
# ---------------------------------------------------------------------------------------------

def stagate_radius(coords, k: int = 6, factor: float = 1.08) -> float:
    """Radius for STAGATE's radius graph where the tutorial's (150, for Visium pixels) does
    not apply: the median distance to the ``k``-th nearest spot, times ``factor`` so that a
    grid's ring of six, whose distances jitter by a pixel, is kept whole.  On the DLPFC
    Visium slides that is 138.9 x 1.08 = 150, the tutorial's value; elsewhere about six
    neighbours a spot."""
    from scipy.spatial import cKDTree

    coords = np.asarray(coords, dtype=np.float64)
    k = min(k, coords.shape[0] - 1)
    d, _ = cKDTree(coords).query(coords, k=k + 1)
    return float(np.median(d[:, k]) * factor)


def _stagate_radius_joins(s: dict, xy) -> float:
    """STAGATE's radius (``rad_cutoff``, or :func:`stagate_radius` where unset); one within which no two spots at
    different positions lie (``Cal_Spatial_Net`` keeps the pairs at a distance in (0, rad_cutoff]: it would make no
    graph; a radius in other units than the coordinates) is refused, naming the spots' nearest distance."""
    from scipy.spatial import cKDTree

    rad = float(s["rad_cutoff"]) if s["rad_cutoff"] is not None else stagate_radius(xy)
    tree = cKDTree(xy)
    if tree.count_neighbors(tree, rad) == tree.count_neighbors(tree, 0.0):     # every pair within it: at one position
        d = tree.query(xy, k=2)[0][:, 1] if xy.shape[0] > 1 else np.array([np.inf])
        apart = d[d > 0]
        nearest = f" (the nearest two are {apart.min():.4g} apart)" if apart.size else ""
        raise InputError(f"method 'stagate': no two spots are within rad_cutoff={rad:g}{nearest}",
                         fix="raise train.peer.rad_cutoff (coordinate units), or leave it unset")
    return rad


def fit_stagate(x, adj, coords, params: dict, seed: int, *, counts=None, n_clusters=None):
    """STAGATE (Dong & Zhang, Nat Commun 2022) from stagate-modern (MIT; import ``STAGATE_pyG``).

    As its DLPFC tutorial: normalize_total 1e4 and log1p of the HVG counts, the radius graph
    ``Cal_Spatial_Net(rad_cutoff)`` (``rad_cutoff`` None: :func:`stagate_radius`, 150 on
    Visium pixel coordinates), ``train_STAGATE`` with hidden_dims [512, 30], 1000 epochs,
    lr 1e-3, ``random_seed=seed``.  ``embedding``: ``obsm['STAGATE']`` (30-d).  No own labels:
    STAGATE clusters with R mclust (EEE) on the embedding, which the shared cluster step
    replaces (set ``cluster.n_pcs: 30`` there to cluster the whole embedding, as STAGATE does).
    """
    s = check("stagate", params, coords, n_genes=_n_genes(counts, "stagate"), n_clusters=n_clusters)
    t0 = time.perf_counter()
    modules = _imports("stagate")
    sc, stagate = modules["scanpy"], modules["STAGATE_pyG"]
    _start(params, seed)
    a = _counts_adata(counts, coords, "stagate")
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    rad = _stagate_radius_joins(s, np.asarray(coords, dtype=np.float64))
    with _quiet("STAGATE"):
        stagate.Cal_Spatial_Net(a, rad_cutoff=rad, verbose=False)
    n_edges = len(a.uns["Spatial_Net"])
    log.info("STAGATE: radius %.4g, %.2f neighbours a spot", rad, n_edges / a.n_obs)
    with _quiet("STAGATE"):
        a = stagate.train_STAGATE(a, hidden_dims=[int(v) for v in s["hidden_dims"]], n_epochs=int(s["n_epochs"]),
                                  lr=float(s["lr"]), weight_decay=float(s["weight_decay"]),
                                  gradient_clipping=float(s["gradient_clipping"]), random_seed=int(seed),
                                  device="cpu", verbose=False)
    log.info("STAGATE: %d epochs in %.1f s", s["n_epochs"], time.perf_counter() - t0)
    return _result(a.obsm["STAGATE"], None, t0, "stagate-modern")


# ---------------------------------------------------------------------------------------------
# SpaGCN
# ---------------------------------------------------------------------------------------------

# The lattices grid_shape recognises: the distances to a location's nearer neighbours, in units of the
# grid's pitch (up to the second ring).
GRID_SHELLS = {"hexagon": (1.0, 3 ** 0.5, 2.0), "square": (1.0, 2 ** 0.5, 2.0)}
# grid_shape measures the distances around this many locations at most, spread over the slide (a
# Visium HD slide's millions of bins need no more).
GRID_PROBES = 20_000


def grid_shape(coords, tol: float = 0.05) -> str:
    """'hexagon' when spots sit on a hexagonal grid (Visium), 'square' on a square grid (ST, Visium HD
    and Stereo-seq bins), else 'none' (cells, beads).

    Two signs of a grid, either of which is enough:

    - each spot's nearest neighbours at one distance: six (hexagon) or four (square) within 1.1
      times its nearest distance, for the median spot;
    - the rings of the lattice: the distances from a location to its eight nearest, in units of the
      pitch (the distance to a nearest neighbour), lie on the lattice's rings (1, sqrt 3 and 2 on a
      hexagonal grid; 1, sqrt 2 and 2 on a square one) within ``tol``, 90% of them or more (cells
      and beads: 35-40% on STARmap, osmFISH and MERFISH).  Spots missing from the grid (drawn out
      by a subsample, QC, holes in the tissue) leave the rings where they are, where the first sign
      took a Visium slide for cells from 10% of its spots missing; the first keeps positions
      rounded to a few pixels, whose rings blur, a grid.

    Locations at one position count once; the distances are those around :data:`GRID_PROBES`
    locations at most, spread over the slide."""
    from scipy.spatial import cKDTree

    xy = np.unique(np.asarray(coords, dtype=np.float64), axis=0)
    if xy.shape[0] < 9:
        return "none"
    probe = xy[np.linspace(0, xy.shape[0] - 1, min(xy.shape[0], GRID_PROBES)).astype(int)]
    d, _ = cKDTree(xy).query(probe, k=9)
    d = d[:, 1:]
    pitch = np.median(d[:, 0])
    near = d[(d > 0.8 * pitch) & (d < 1.2 * pitch)]
    pitch = float(np.median(near)) if near.size else pitch
    if pitch > 0:
        r = d.ravel() / pitch
        r = r[r <= 2.0 * (1 + tol)]
        on = {shape: float(np.mean(np.any([np.abs(r / ring - 1) <= tol for ring in rings], axis=0)))
              for shape, rings in GRID_SHELLS.items()}
        best = max(on, key=on.get)
        if on[best] >= 0.9 and on[best] > min(on.values()):
            return best
    count = np.median((d[:, :7] <= 1.1 * d[:, [0]]).sum(axis=1))
    return {6: "hexagon", 4: "square"}.get(int(count), "none")


def fit_spagcn(x, adj, coords, params: dict, seed: int, *, counts=None, n_clusters=None):
    """SpaGCN (Hu et al., Nat Methods 2021) from spagcn-modern (MIT; import ``SpaGCN``; its
    default ``compat='spagcn-1.2.7'`` reproduces the published 1.2.7 behaviour).

    As its tutorial, without histology: the distance matrix of ``coords``
    (``calculate_adj_matrix(histology=False)``), ``prefilter_genes(min_cells=3)`` (the ERCC/MT-
    filter needs gene names and is left to the pipeline's QC), normalize_per_cell and log1p,
    ``search_l(p=0.5)``, ``search_res`` for ``n_clusters`` domains (start 0.7, step 0.1,
    lr 0.05, 20 epochs), then ``train(init='louvain', lr=0.05, max_epochs=200, tol=5e-3)``
    and ``predict``; the three seeds of the tutorial (100 there) are all ``seed``.
    ``labels``: the prediction after ``refine`` (shape ``hexagon`` on a hexagonal grid,
    ``square`` on a square one, none on scattered spots: ``refine_shape: auto``).
    ``embedding``: the model's hidden representation (the graph convolution's output, the
    space its cluster centres live in; ``num_pcs`` wide).

    numpy's BLAS and the OpenMP pools are held at one thread while it runs: with more, its
    labels changed with their thread count (``OMP_NUM_THREADS`` 1 against 2 on a 300-spot
    slide), with one they depend on ``seed`` alone.
    """
    from threadpoolctl import threadpool_limits

    s = check("spagcn", params, coords, n_genes=_n_genes(counts, "spagcn"), n_clusters=n_clusters)
    k = _need_clusters("spagcn", n_clusters)
    with threadpool_limits(limits=1):
        return _spagcn(s, k, coords, params, seed, counts)


def _spagcn(s: dict, k: int, coords, params: dict, seed: int, counts):
    t0 = time.perf_counter()
    modules = _imports("spagcn")
    sc, torch, spg = modules["scanpy"], modules["torch"], modules["SpaGCN"]
    _start(params, seed)
    a = _counts_adata(counts, coords, "spagcn")
    xy = np.asarray(coords, dtype=np.float64)
    with _quiet("SpaGCN"):
        dist = spg.calculate_adj_matrix(x=xy[:, 0].tolist(), y=xy[:, 1].tolist(), histology=False)
        spg.prefilter_genes(a, min_cells=int(s["min_cells"]))
        sc.pp.normalize_per_cell(a, min_counts=0)   # keep every spot: the graph above has them all
        sc.pp.log1p(a)
        l_scale = spg.search_l(float(s["p"]), dist, start=0.01, end=1000, tol=0.01, max_run=100)
    if l_scale is None:
        raise InputError(f"method 'spagcn': search_l found no length scale for p={s['p']}",
                         fix="set train.peer.p between 0 and 1 (the tutorial's 0.5)")
    with _quiet("SpaGCN"):
        res = spg.search_res(a, dist, l_scale, k, start=float(s["res_start"]), step=float(s["res_step"]),
                             tol=float(s["tol"]), lr=float(s["res_lr"]), max_epochs=int(s["res_max_epochs"]),
                             r_seed=int(seed), t_seed=int(seed), n_seed=int(seed))
        clf = spg.SpaGCN()
        clf.set_l(l_scale)
        random.seed(seed)
        torch.manual_seed(seed)
        np.random.seed(seed)
        clf.train(a, dist, num_pcs=int(s["num_pcs"]), init_spa=True, init=str(s["init"]),
                  n_neighbors=int(s["n_neighbors"]), res=res, tol=float(s["tol"]), lr=float(s["lr"]),
                  max_epochs=int(s["max_epochs"]))
        pred, _prob = clf.predict()
        z, _q = clf.model.predict(clf.embed, clf.adj_exp)
    shape = grid_shape(xy) if s["refine_shape"] == "auto" else str(s["refine_shape"])
    labels = np.asarray(pred)
    if shape != "none":
        with _quiet("SpaGCN"):
            labels = np.asarray(spg.refine(sample_id=a.obs_names.tolist(), pred=labels.tolist(), dis=dist,
                                           shape=shape))
    log.info("SpaGCN: l %.4g, resolution %.3g, %d domains (refine %s) in %.1f s", l_scale, res,
             len(np.unique(labels)), shape, time.perf_counter() - t0)
    return _result(z.cpu().numpy(), labels, t0, "spagcn-modern")


# ---------------------------------------------------------------------------------------------
# CellCharter
# ---------------------------------------------------------------------------------------------

def _check_not_on_a_line(coords) -> None:
    """Refuse spots whose positions all lie on one straight line (a transect, or coordinates whose
    second column was lost in a conversion): CellCharter's Delaunay triangulation has no triangle
    to make of them, and Qhull stopped the job with 'QH6154 Qhull precision error: Initial simplex
    is flat'."""
    xy = np.unique(np.asarray(coords, dtype=np.float64), axis=0)
    if xy.shape[0] >= 3 and xy.shape[1] >= 2:
        centred = xy - xy.mean(axis=0)
        sv = np.linalg.svd(centred, compute_uv=False)
        if sv[1] > 1e-9 * sv[0]:
            return
    raise InputError(f"method 'cellcharter': the spots' {xy.shape[0]} distinct positions lie on one straight line, "
                     "so its Delaunay graph (a triangulation of the positions) cannot be made",
                     fix="check that obsm['spatial'] holds both coordinates of every spot (a column lost or copied in a "
                         "conversion puts the spots on a line), or leave cellcharter out for this slide (the method's "
                         "samples: in the config; in tl.domains, a method= without it)")


def _spots_left_alone(conn, xy) -> str | None:
    """The warning where CellCharter's Delaunay graph ``conn`` leaves spots that share their position
    with another without a neighbour (None where it leaves none): the triangulation keeps one spot
    of each position and drops the others, so their aggregated features hold no neighbourhood and
    they are put in domains by their own expression alone, apart from the spots beside them and
    from their twin (the osmFISH file's 476 repeated cells: 423 of the 476 pairs in two domains).
    Spots far from every other, cut off by ``remove_long_links``, are its design and are not
    named."""
    import scipy.sparse as sp

    conn = sp.csr_matrix(conn, copy=True)
    conn.eliminate_zeros()
    alone = np.diff(conn.indptr) == 0
    if not alone.any():
        return None
    _, where, held = np.unique(xy, axis=0, return_inverse=True, return_counts=True)
    shared = alone & (held[np.ravel(where)] > 1)
    if not shared.any():
        return None
    return (f"method 'cellcharter': {int(shared.sum())} of the {len(xy)} spots share their position with another "
            "spot and have no neighbour in its Delaunay graph (the triangulation keeps one spot of each position): "
            "their features hold no neighbourhood, so each is put in a domain by its own expression alone, often "
            "apart from the spot it shares the position with (the osmFISH file: 423 of its 476 repeated cells). Fix: drop the repeated spots, or correct their coordinates "
            "in obsm['spatial']")


def fit_cellcharter(x, adj, coords, params: dict, seed: int, *, counts=None, n_clusters=None):
    """CellCharter (Varrone et al., Nat Genet 2024) from its package (BSD-3; the ``cellcharter``
    extra, which brings squidpy and spatialdata).

    As its README: squidpy's Delaunay graph (``spatial_neighbors_delaunay``, the same graph to the
    bit on the six shared slides as the deprecated ``spatial_neighbors(coord_type='generic', delaunay=True)``),
    ``cellcharter.gr.remove_long_links`` (99th percentile), ``aggregate_neighbors(n_layers=3)``
    of a 10-d representation, then ``cellcharter.tl.Cluster(n_clusters, random_state=seed)``.
    The representation is PCA (10 components of normalize_total 1e4 + log1p of the HVG counts)
    where its authors use scVI (see :data:`CELLCHARTER_DEFAULTS`).  ``embedding``: the aggregated
    features (rep_dims x (n_layers + 1) columns); ``labels``: its own mixture's domains, fitted
    only when ``n_clusters`` is given (else None: the features do not depend on it).
    """
    s = check("cellcharter", params, coords, n_genes=_n_genes(counts, "cellcharter"), n_clusters=n_clusters)
    k = None if n_clusters is None else _need_clusters("cellcharter", n_clusters)
    t0 = time.perf_counter()
    modules = _imports("cellcharter")
    sc, sq, cc = modules["scanpy"], modules["squidpy"], modules["cellcharter"]
    _start(params, seed)
    a = _counts_adata(counts, coords, "cellcharter")
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    dims = int(min(s["rep_dims"], a.n_vars - 1, a.n_obs - 1))
    sc.pp.pca(a, n_comps=dims, random_state=seed)
    with _quiet("CellCharter"):
        sq.gr.spatial_neighbors_delaunay(a, spatial_key="spatial")
        cc.gr.remove_long_links(a, distance_percentile=float(s["distance_percentile"]))
        alone = _spots_left_alone(a.obsp["spatial_connectivities"], np.asarray(coords, dtype=np.float64))
        cc.gr.aggregate_neighbors(a, n_layers=int(s["n_layers"]), use_rep="X_pca", out_key="X_cellcharter")
        labels = None
        if k is not None:
            model = cc.tl.Cluster(n_clusters=k, random_state=int(seed),
                                  trainer_params={"accelerator": "cpu", "enable_progress_bar": False})
            model.fit(a, use_rep="X_cellcharter")
            labels = np.asarray(model.predict(a, use_rep="X_cellcharter")).astype(int)
    if alone:       # after the packages' output is let through again: a warning in the log, not in its debug lines
        log.warning(alone)
    log.info("CellCharter: %d layers on %d PCs, %s in %.1f s", s["n_layers"], dims,
             f"{k} domains" if k is not None else "no clustering of its own", time.perf_counter() - t0)
    return _result(a.obsm["X_cellcharter"], labels, t0, "cellcharter")


# ---------------------------------------------------------------------------------------------
# BANKSY
# ---------------------------------------------------------------------------------------------

# BANKSY's lambda and k_geom by the slide's kind (BANKSY_DEFAULTS: None, from the kind).
BANKSY_BY_KIND = {"spots": {"lambda": 0.2, "k_geom": 18}, "cells": {"lambda": 0.8, "k_geom": 15}}
# pybanksy holds the BANKSY matrix (spots x (max_m + 2) blocks of the genes, float64) dense, with
# copies: the fit's peak is about 4.5 of it beyond the slide (4.4 measured at 25,000 and 50,000
# simulated spots, 4.5 on DLPFC 151673: benchmarks/banksy_scale.py, results/banksy_scale.tsv).
# The registry's bytes_per_value for banksy (the job's memory request) is this x 3 blocks x 8 bytes.
BANKSY_COPIES = 4.5


def banksy_memory_mb(n_spots: int, n_genes: int, max_m: int = 1) -> float:
    """MB the BANKSY matrix and its copies take for ``n_spots`` x ``n_genes`` (the genes it uses)."""
    return BANKSY_COPIES * n_spots * (max_m + 2) * n_genes * 8 / 2**20


def banksy_kind(coords) -> str:
    """'spots' when the locations sit on a regular grid (hexagonal: Visium; square: ST), spots
    that each hold several cells; else 'cells' (imaging platforms: one location a cell)."""
    return "spots" if grid_shape(coords) in ("hexagon", "square") else "cells"


def _check_banksy_memory(n_spots: int, n_genes: int, max_m: int) -> None:
    """Refuse, before the BANKSY matrix is made, a slide whose matrix cannot fit in the memory this
    process can still take (:func:`stcore.workflow.available_memory_mb`): one line with the fix
    instead of a job killed without a word."""
    from .workflow import available_memory_mb

    need, free = banksy_memory_mb(n_spots, n_genes, max_m), available_memory_mb()
    if free is not None and need > free:
        fits = int(free / banksy_memory_mb(n_spots, 1, max_m))          # the genes whose matrix fits
        fewer = (f"give banksy {fits:,} genes or fewer (its n_top_genes: in the config, methods.<its name>.train.peer."
                 f"n_top_genes; in tl.domains, train={{'peer': {{'banksy': {{'n_top_genes': {fits}}}}}}}), "
                 if fits >= 1 else "")
        default_m = int(BANKSY_DEFAULTS["max_m"])     # a max_m above its default: the matrix that fits may be its own
        if max_m > default_m and banksy_memory_mb(n_spots, n_genes, default_m) <= free:
            fewer = (f"set its max_m back to {default_m}, its default (in the config, methods.<its name>.train.peer."
                     f"max_m; in tl.domains, train={{'peer': {{'banksy': {{'max_m': {default_m}}}}}}}), {fewer}")
        raise InputError(f"method 'banksy': {n_spots:,} spots x {n_genes:,} genes need about {need / 1024:.1f} GB "
                         f"(pybanksy holds its matrix of {max_m + 2} x {n_genes:,} columns dense, with copies), and "
                         f"{free / 1024:.1f} GB of memory are free here",
                         fix="run it where more is free (a cluster job asks for it: stcore/plan/resources.py), "
                             f"{fewer}or leave banksy out for this slide (its "
                             "samples: in the config; in tl.domains, a method= without it)")


def fit_banksy(x, adj, coords, params: dict, seed: int, *, counts=None, n_clusters=None):
    """BANKSY (Singhal et al., Nat Genet 2024) from pybanksy 1.3.5 (GPL-3.0; the ``banksy``
    extra, imported only, never copied).

    The authors' settings for domain segmentation, and where each comes from (Banksy_py
    notebooks at github.com/prabhakarlab/Banksy_py, the R package's vignettes at
    github.com/prabhakarlab/Banksy):

    - ``lambda`` (the neighbourhood's weight): 0.8 on single-cell slides, the value the authors
      recommend for domain ("zone") finding (R vignette parameter-selection: "lambda=0.2 for
      cell-typing and lambda=0.8 for zone-finding"), and use in every domain-segmentation
      example on cells (Python starmap_analysis and CODEX_B012_tissue_segmentation; R
      domain-segment).  0.2 on Visium spots, which already average several cells: the value of
      both authors' DLPFC domain analyses (Python DLPFC_harmony_multisample,
      DLPFC_concatenate_multisample; R batch-correction, multi-sample).
    - ``k_geom`` (spatial neighbours): 15 on cells (starmap_analysis, CODEX_B012; the default of
      ``initialize_banksy``); 18 on Visium, "first and second-order neighbors in 10x Visium"
      (R batch-correction; Python DLPFC_harmony_multisample).  A square grid (ST) is taken as
      spots too (several cells a spot); the authors give no setting for it.
    - ``max_m`` 1: the first-order azimuthal Gabor filter (AGF) term, on in all the examples
      above except the no-AGF DLPFC concatenation ("we recommend a default of 1",
      ``initialize_banksy``).  pybanksy 1.3.5's ``generate_banksy_matrix`` passes its
      ``variance_balance`` argument (False) into ``create_nbr_matrix``'s ``center`` position,
      so the AGF is computed on uncentred neighbour expression; that is the package's
      behaviour as its notebooks run it, and it is kept.
    - ``nbr_weight_decay`` scaled_gaussian ("By default, we recommend scaled_gaussian", README;
      every notebook); ``pca_dims`` 20 ("As a default, we set PCA_dims = 20", README; every
      Python notebook and the R DLPFC vignette).
    - Normalisation: ``normalize_total`` to the median library size, no log (the DLPFC
      notebooks' ``filter_utils.normalize_total``; R: ``NormalizeData(normalization.method='RC',
      scale.factor=median library size)``, ``normalizeCounts(log=FALSE)`` in the README).  The
      library size is the spot's total over the genes given (the pipeline's HVGs), as for the
      other peers.  ``log1p: true`` adds a log.
    - Genes: 2000 highly variable genes (R vignettes: Seurat ``FindVariableFeatures(nfeatures =
      2000)``; the Python DLPFC notebooks read those R-derived 2000), chosen here by scanpy's
      seurat_v3 (Seurat's vst) among the pipeline's HVGs when more than ``n_top_genes`` are
      given; imaging panels with fewer genes use them all, as the authors do for STARmap
      ("we skip this step").  The seurat_v3 trend is fitted on the genes given, so the 2000
      are close to, not always the same as, the top 2000 over every gene.

    ``embedding``: the ``pca_dims`` principal components of the BANKSY matrix
    (``pca_umap``, scikit-learn PCA seeded through numpy's generator).  ``labels``: its own
    clustering, as pybanksy makes it without R: ``LeidenPartition`` (50 nearest neighbours in
    the PCs, shared-neighbour filtering, distance weights; ``run_Leiden_partition``'s
    settings) and its ``find_resolutions`` search (from resolution 0.6 in steps of 0.05, at
    most 25 tries) for ``n_clusters`` domains, partitioned with ``seed`` (its notebooks use
    1234), run only when ``n_clusters`` is given (the PCs do not depend on it).  Where the
    search ends at another number of domains the labels are kept and the number is logged (the
    table's ``domains_found`` shows it).  ``seed`` seeds Python's and
    numpy's generators.  torch is not imported: the provenance columns name numpy's BLAS and
    no torch kernels.
    """
    import random
    import warnings

    from threadpoolctl import threadpool_limits

    s = check("banksy", params, coords, n_genes=_n_genes(counts, "banksy"), n_clusters=n_clusters)
    k = _need_clusters("banksy", n_clusters) if s["own_clustering"] == "leiden" and n_clusters is not None else None
    kind = banksy_kind(coords) if s["kind"] == "auto" else str(s["kind"])
    lam = float(s["lambda"] if s["lambda"] is not None else BANKSY_BY_KIND[kind]["lambda"])
    k_geom = int(s["k_geom"] if s["k_geom"] is not None else BANKSY_BY_KIND[kind]["k_geom"])
    t0 = time.perf_counter()
    modules = _imports("banksy")
    sc, init, embed = modules["scanpy"], modules["banksy.initialize_banksy"], modules["banksy.embed_banksy"]
    bmain, bclust, pca = modules["banksy.main"], modules["banksy.cluster_methods"], modules["banksy_utils.umap_pca"]
    leidenalg = modules["leidenalg"]
    random.seed(seed)
    np.random.seed(seed)
    a = _counts_adata(counts, coords, "banksy")
    threads = int(params["threads"]) if params.get("threads") else None
    with threadpool_limits(limits=threads), _quiet("BANKSY"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n_genes_given = a.n_vars
        if s["n_top_genes"] and a.n_vars > int(s["n_top_genes"]):
            sc.pp.highly_variable_genes(a, flavor="seurat_v3", n_top_genes=int(s["n_top_genes"]), subset=True)
        sc.pp.normalize_total(a)
        if s["log1p"]:
            sc.pp.log1p(a)
        a.obsm["coord_xy"] = np.asarray(coords, dtype=np.float64)
        max_m = int(s["max_m"])       # (its matrix's memory: checked before, by check())
        k_used = max(1, min(k_geom, (a.n_obs - 1) // (max_m + 1)))
        decay = str(s["nbr_weight_decay"])
        banksy_dict = init.initialize_banksy(a, ("x", "y", "coord_xy"), k_used, nbr_weight_decay=decay, max_m=max_m,
                                             plt_edge_hist=False, plt_nbr_weights=False, plt_agf_angles=False,
                                             plt_theta=False)
        banksy_dict, _ = embed.generate_banksy_matrix(a, banksy_dict, [lam], max_m, verbose=False)
        b = banksy_dict[decay][lam]["adata"]
        dims = int(min(s["pca_dims"], b.n_obs - 1, b.n_vars))
        pca.pca_umap(banksy_dict, pca_dims=[dims], plt_remaining_var=False, add_umap=False)
        emb = np.asarray(b.obsm[f"reduced_pc_{dims}"])
        labels, resolution = None, None
        if k is not None:
            partitioner = bmain.LeidenPartition(emb, num_nn=int(min(s["num_nn"], a.n_obs - 1)), nns_have_weights=True,
                                                compute_shared_nn=True, filter_shared_nn=True, shared_nn_max_rank=3,
                                                shared_nn_min_shared_nbrs=5, verbose=False)
            resolution = bclust.find_resolutions(partitioner, k, -1, int(seed),
                                                 starting_resolution=float(s["resolution_start"]),
                                                 step=float(s["resolution_step"]), max_iter=int(s["max_iter"]))[0]
            label, _ = partitioner.partition(resolution=resolution,
                                             partition_metric=leidenalg.RBConfigurationVertexPartition,
                                             n_iterations=-1, seed=int(seed))
            labels = np.asarray(label.dense)
    log.info("BANKSY: %s, lambda %g, k_geom %d, max_m %d, %d of %d genes, %d PCs in %.1f s", kind, lam, k_used,
             max_m, a.n_vars, n_genes_given, dims, time.perf_counter() - t0)
    if labels is not None:
        found = len(np.unique(labels))
        (log.info if found == k else log.warning)(
            "BANKSY: Leiden resolution %.3g gives %d domains (asked %d)", resolution, found, k)
    return _result(emb, labels, t0, "pybanksy", torch=False)      # numpy alone: torch is not imported
