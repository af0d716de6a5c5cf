"""Notebook API, tools (scanpy style: keyword-only, AnnData in, keys added, ``copy=``).

    import stcore
    stcore.tl.domains(adata, n_clusters=7, seed=0)       # obs['domain'], obsm['X_graphst'], uns['stcore']
    stcore.tl.domains(adata, n_clusters=7, seed=range(5))  # the consensus of five seeds
    stcore.tl.domains(adata, n_clusters=7, method=["graphst", "banksy", "cellcharter"],
                      seed=range(3))                       # the recommended answer

Runs the pipeline's own steps on an AnnData with raw counts in ``X`` (or ``layer``) and
coordinates in ``obsm['spatial']``: the HVG transform (``stcore.hvg.run_hvg``), the spatial
graph (``obsp['spatial_connectivities']`` when present, e.g. from
:func:`stcore.gr.spatial_graph`, else :func:`stcore.graph.spatial_adjacency`), a method of the
registry (``stcore.methods.fit``) and the clustering (``stcore.cluster``), with the same
defaults as the workflow's config.  The same input, settings and seed give the same labels
as the workflow (``tests/test_workflow.py``).  Several seeds give the consensus of their
labelings, as the workflow's consensus step combines a method's seeds.  The record of the call
is ``uns['stcore']``, laid out as the workflow's ``domains.h5ad`` records a run
(:func:`stcore.export.domains_adata`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import anndata as ad
import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["domains"]


def domains(adata: ad.AnnData, *, n_clusters: int | str, method: str | Iterable[str] = "graphst",
            seed: int | Iterable[int] = 0,
            n_top_genes: int = 3000, hvg_flavor: str = "seurat_v3", values: str = "counts",
            train: dict | None = None,
            cluster: dict | None = None, layer: str | None = None, spatial_key: str = "spatial",
            spatial_dims: tuple | None = None, graph_key: str = "spatial", key_added: str = "domain",
            overwrite: bool = False, progress: bool | None = None, copy: bool = False) -> ad.AnnData | None:
    """Spatial domains of the spots.

    Runs the workflow's steps on ``adata``: its QC's gene filter at the defaults (genes detected in
    no spot are left out of the model, not of ``adata``), the HVG transform, the spatial graph, the method's
    training and the clustering, with the workflow config's defaults; the same input, settings
    and seed give the workflow's labels.  Before any work the input is checked as the workflow
    checks a slide (:mod:`stcore.validate`, the same messages): the values (NaN, negative, and
    with ``values='counts'`` and ``hvg_flavor='seurat_v3'`` whole numbers, so log-normalised
    values given as counts are refused; values that are not what ``values`` says, by the spots'
    totals or by the transform under which each spot's values are whole multiples of its smallest;
    no spot without counts), ``obsm[spatial_key]`` (present, finite, two columns, or
    the two named by ``spatial_dims``; of one slide), unique spot and gene ids, a stored knn or
    Delaunay graph built before spots were removed, the ``train`` and ``cluster`` keys (against the config schema
    shipped in ``stcore/schemas/``), ``train['device']``, ``n_clusters``, the clustering and
    ``seed``; each problem is a :class:`stcore.InputError` naming the key and the fix.

    Parameters
    ----------
    adata : AnnData
        Spots x genes, raw counts in ``X`` (or ``layer``), coordinates in ``obsm[spatial_key]``.
    n_clusters : int or 'auto'
        Number of domains, or ``'auto'``: chosen from the features by ``cluster['auto']``
        (``'stability'``, default, or ``'bic'``) over ``cluster['auto_range']`` (2 to 15); the
        curve is in ``uns['stcore']['n_clusters']``.  Give the number where it is known.
    method : str or list of str, default 'graphst'
        A method of the registry (:mod:`stcore.methods`): ``'graphst'``, ``'expression'``, or a
        peer method of an installed extra.  Several methods: each is trained and clustered at each
        seed and their labelings are combined by the consensus step (the workflow's ``ensembles``):
        at one seed, the methods'; at several, one vote over every method at every seed (each
        seed's combination in ``obsm[key_added + '_seeds']``).  The README's recommended answer is
        ``method=['graphst', 'banksy', 'cellcharter']`` with ``seed=range(3)`` (needs ``pip
        install -e '.[banksy,cellcharter]'``): the workflow's ``recommended/consensus``.  What a
        method would refuse that is known before training (a peer's package that cannot be
        imported, CellCharter's spots on one line, SpaGCN's 50 genes or fewer, BANKSY's matrix
        larger than the memory free, a peer setting it does not take) is refused before the first
        method trains (:func:`stcore.methods.check_fit`).
    seed : int or iterable of int, default 0
        One seed, or several (e.g. ``range(5)``).  With several, each seed is trained and
        clustered on its own and ``obs[key_added]`` is the consensus of their labelings
        (:func:`stcore.consensus.consensus`, the workflow's consensus step).  On the three DLPFC
        slides the sd of a single seed's ARI over 20 seeds is 0.016-0.035, that of the consensus
        of five seeds 0.007-0.022 (``docs/compare/DEFAULTS.md``).
    n_top_genes : int, default 3000
        Highly variable genes kept.
    hvg_flavor : str, default 'seurat_v3'
        HVG selection: ``'seurat_v3'`` (on counts), ``'seurat'`` or ``'cell_ranger'``.
    values : str, default 'counts'
        What ``X`` (or ``layer``) holds, as the sample sheet's ``values`` column: ``'counts'``,
        ``'normalized'`` or ``'log_normalized'``.
    train : dict, default None
        Settings as under ``train:`` in the config; a key left out takes its default.  ``peer``
        goes to every peer method of the call, or is one block per method, keyed by its name, as
        the workflow's ``methods.<name>.train.peer``: ``{'peer': {'banksy': {'n_top_genes': 1000},
        'cellcharter': {'n_layers': 2}}}`` (a peer without a block: its package's defaults):

{train_keys}
    cluster : dict, default None
        Settings as under ``cluster:`` in the config; a key left out takes its default:

{cluster_keys}
    layer : str, default None
        Layer holding the counts (None: ``X``).
    spatial_key : str, default 'spatial'
        ``obsm`` key of the coordinates.
    spatial_dims : tuple, default None
        The two columns of ``obsm[spatial_key]`` to use when it has more than two.
    graph_key : str, default 'spatial'
        The spatial graph is ``obsp[graph_key + '_connectivities']`` when present (e.g. from
        :func:`stcore.gr.spatial_graph` or ``squidpy.gr.spatial_neighbors``); otherwise the
        workflow's graph (:func:`stcore.gr.spatial_graph` with its defaults: 3 nearest spots) is
        built and stored there, under squidpy's keys.  A stored graph that
        :func:`stcore.gr.spatial_graph` built from other coordinates (another ``spatial_key`` or
        ``spatial_dims``, kept in its ``params``) is refused; so is one whose edges' stored lengths
        (``obsp[graph_key + '_distances']``) are not the spots' distances now: built on positions
        changed since.
    key_added : str, default 'domain'
        ``obs`` column of the domains; also names ``obsm[key_added + '_seeds']`` and
        ``obsm[key_added + '_methods']``, and
        ``uns['stcore']['key']`` records it.
    overwrite : bool, default False
        Write over an ``obs[key_added]`` that stcore did not write (an annotation, e.g. a
        simulated slide's truth ``domain``); without it that is an error naming ``key_added``.  A
        column an earlier call wrote (``uns['stcore']['columns']``; a workflow's ``domains.h5ad``:
        ``uns['stcore']['key']``) is replaced, unless other labels were assigned to it since (the spots
        grouped otherwise than that call left them: :func:`replaced_since`), which are refused as an
        annotation is.  The workflow's ``domains.h5ad`` follows the
        same rule (:func:`stcore.export.domains_adata`).
    progress : bool, default None
        A progress bar over each training's epochs (``tqdm.auto``: a widget in a notebook, a bar
        on a terminal).  None: shown when the session is interactive (a notebook, or stderr a
        terminal) and ``scanpy.settings.verbosity`` is 1 ('warning', scanpy's default) or more,
        so ``sc.settings.verbosity = 0`` turns it off.
    copy : bool, default False
        Return a copy with the results instead of writing into ``adata`` (of a slide opened with
        ``read_h5ad(..., backed='r')``: the slide in memory, ``adata.to_memory()``).

    Returns
    -------
    AnnData or None
        The copy with the results when ``copy=True``, else None; the results are:

        - ``obs[key_added]``: the domains (categorical); ``uns[key_added + '_colors']``, an earlier
          labelling's colours, is removed (:func:`stcore.pl.domains` matches them again);
        - ``obsm['X_<method>']``: the embedding (the first seed's with several seeds), one per
          method; those of the other methods of the call whose column this call replaces are removed;
        - ``obsm[key_added + '_seeds']``: each seed's labels, one column per seed (several seeds
          only; with several methods, each seed's combined labels);
        - ``obsm[key_added + '_methods']``: each method's labels at the first seed, one column per
          method (several methods only);
        - ``obsp[graph_key + '_connectivities']``, ``obsp[graph_key + '_distances']`` and
          ``uns[graph_key + '_neighbors']``: the graph, when this call built it (as
          ``squidpy.gr.spatial_neighbors`` stores one, so squidpy's functions run on it);
        - ``uns['stcore']``: the call's record, with the keys of the workflow's
          ``domains.h5ad`` where the content is the same: ``method`` (several methods:
          ``'graphst+banksy+cellcharter'``, with ``trained_by`` the same and ``methods_ARI`` the
          mean pairwise ARI of their labelings, averaged over the
          seeds); ``seed`` (with several
          seeds ``'consensus'``, ``consensus_of`` the seeds as ``'0,1,2'``, ``embedding_of_seed``
          the first and ``seed_ARI`` the mean pairwise ARI of their labelings, 1 when all agree);
          ``train``: what the training read, with ``model`` (the graph model: the train block; a
          peer: its ``peer`` settings, its package's defaults filled in; several methods: one entry
          each); ``cluster``: the clustering settings its algorithm reads at ``n_clusters`` (the schema's
          defaults filled in; ``n_init`` is k-means' and gmm_tied's, not mclust's; ``n_pcs`` the
          components clustered, with ``n_pcs_asked`` where the features had fewer dimensions);
          ``n_clusters``: how the number of domains was set (``by``: ``'given'``, ``'own labels'``,
          or auto's ``'stability'`` / ``'bic'`` with its curve; ``chosen``; with several seeds or
          methods the first seed's and method's, and with auto ``chosen_by_run``: every method's
          choice at every seed); ``domains_found``: the number of domains in ``obs[key_added]`` (the
          vote over labelings of different sizes keeps the median of their numbers:
          :mod:`stcore.consensus`);
          ``key``: the ``obs`` column of the domains.  The API's own: ``hvg``
          (``n_top_genes``: the genes used, with ``n_top_genes_asked`` where the slide had fewer;
          ``flavor``), ``values``, ``graph``: which graph was used
          (``connectivities_key``, ``built``: whether this call built it, ``params``, ``n_edges``;
          ``spatial_key`` and, where given, ``spatial_dims``: the coordinates this call read;
          ``symmetrized`` where the stored graph was one way, as squidpy's knn graph: each edge taken
          both ways),
          ``input_digest``: sha256 of the spot and gene ids in their order, the values read and the
          coordinates (:func:`stcore.provenance.data_digest`; the same for CSR, CSC or dense, float or
          integer counts of the same values, another where the spots or genes are in another order, which
          may give other domains as another seed does: ``docs/guarantees.md``),
          ``columns``: the ``obs`` columns this and earlier calls wrote (each may be written
          again without ``overwrite``), ``by_key``: the records of the earlier calls whose columns are
          kept, one per ``key_added`` (:func:`calls_by_key`; each column's figure title names its own
          call), each with ``embeddings_replaced`` where a later call wrote over its ``obsm['X_<method>']``
          ({method: that call's ``key_added``}: :func:`stcore.pl.domains` names whose embedding it draws),
          and ``labelling``: digests of the spots and of the domains' grouping of them (:func:`labelling`),
          so that :func:`stcore.pl.domains` does not title a column replaced since with this call's
          method and seeds.
    """
    import scipy.sparse as sp

    from .cluster import ClusterParams, features_of, n_pcs_used, run_cluster, used_pcs
    from .consensus import consensus, two_labelings
    from .evaluate import mean_pairwise_ari
    from .export import combined_choice, seed_frame
    from .hvg import HVGParams, run_hvg, used_genes
    from .qc import QCParams, qc_masks
    from .io import as_csr
    from .methods import check_fit, fit, recorded_train
    from .registry import METHODS, unknown_peer_settings
    from .methods import method as method_entry
    from .gr import add_graph
    from .train import epoch_progress, resolve_device
    from .validate import (check_clustering, check_in_place, check_key, check_logged_mark, check_n_clusters,
                           check_settings, check_slide, check_values, counts_beside, images_out_of_register,
                           warn_no_spatial_pattern, warn_shared_positions)

    if isinstance(seed, (str, bytes)) or not isinstance(seed, (int, np.integer, Iterable)):
        raise InputError(f"seed {seed!r} is not a whole number or several",
                         fix="give seed as an int (seed=42; a number read as text: int(...)) or several "
                             "(seed=range(3))")
    seeds = [seed] if isinstance(seed, (int, np.integer)) else list(seed)
    if not seeds:
        raise InputError(f"seed {seed!r} holds no seed", fix="give one seed (seed=0) or several (seed=range(3))")
    other = [s for s in seeds if isinstance(s, bool) or not isinstance(s, (int, np.integer, float, np.floating))]
    if other:            # int() of None is a TypeError, of 'a' a ValueError, of '7' another seed's text
        raise InputError(f"seed {other[0]!r} (of {seed!r}) is not a whole number",
                         fix="give whole numbers as seeds (seed=range(3), seed=[0, 1, 2]; numbers read as text: "
                             "[int(s) for s in seeds])")
    fractional = [s for s in seeds if isinstance(s, (float, np.floating)) and not float(s).is_integer()]
    if fractional:       # int() would cut 1.7 to 1: another seed than given, without a word
        raise InputError(f"seed {fractional[0]!r} (of {seed!r}) is not a whole number",
                         fix="give whole numbers as seeds (seed=range(3), seed=[0, 1, 2])")
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise InputError(f"seed: one seed or several different seeds, got {seed!r} (a seed repeated runs the same "
                         "labelling twice and counts it twice in the vote)",
                         fix="give different seeds (seed=range(3)) or one (seed=0)")
    if not isinstance(method, (str, Iterable)):      # None, a number: not iterable (was a bare TypeError)
        raise InputError(f"method {method!r} is not a method's name or several",
                         fix="name one (method='graphst') or several (method=['graphst', 'banksy', 'cellcharter'])")
    methods = [method] if isinstance(method, str) else [str(m) for m in method]
    if not methods or len(set(methods)) != len(methods):
        raise InputError(f"method: one method or several different methods, got {method!r}",
                         fix="name each method once (method=['graphst', 'banksy', 'cellcharter'])")
    # Every check before any work (the workflow's, with its messages: stcore.validate).
    train, cluster, hvg = check_settings(train=train, cluster=cluster,
                                         hvg={"n_top_genes": n_top_genes, "flavor": hvg_flavor})
    n_top_genes = hvg["n_top_genes"]
    n_clusters = check_n_clusters(n_clusters, adata.n_obs)
    for m in methods:
        check_clustering(m, cluster, n_clusters)
    # each method's train block: a peer's train['peer'] is given to every peer of the call, or is one block per
    # method (train={'peer': {'banksy': {...}}}, the workflow's methods.<name>.train.peer)
    train_of = _train_by_method(train, methods)
    # what each method's training reads, checked against the keys each peer takes now, not by its fit after the
    # other methods trained
    read = {}
    for m in methods:
        try:
            read[m] = recorded_train(m, _with_defaults("train", train_of[m]))
        except InputError as exc:
            # keys of another peer of the call (BANKSY's n_top_genes, as its memory refusal names it): its own block
            owner = next((o for o in methods if o != m and train_of[m] is train and "unknown train.peer"
                          in exc.problem and not METHODS[o].builtin and not unknown_peer_settings(o, train["peer"])),
                         None)
            if owner is None:
                raise
            raise InputError(exc.problem, fix=f"{exc.fix}; train['peer'] goes to every peer of the call: give the "
                                              f"settings of {owner} its own block, "
                                              f"train={{'peer': {{'{owner}': {dict(train['peer'])!r}}}}}") from None
    if "device" in train:
        resolve_device(train["device"])          # a device this machine lacks is refused before any work
    if not copy:
        check_in_place(adata, "stcore.tl.domains")
    written = _columns_written(adata)
    if key_added in written and not overwrite and replaced_since(adata, key_added):
        raise InputError(f"obs['{key_added}'] holds other labels than the tl.domains call that wrote it "
                         f"({call_words(adata, key_added)}) left there: the spots are grouped otherwise (labels "
                         f"assigned to it since: an annotation, one seed's picked from obsm['{key_added}_seeds'], "
                         "domains merged by hand); they are not overwritten",
                         fix=f"pass another key_added (e.g. key_added='{key_added}_2'), keep them under another name "
                             f"first (adata.obs['{key_added}_mine'] = adata.obs['{key_added}']), or pass "
                             "overwrite=True to write over them")
    check_key(adata, key_added, overwrite=overwrite or key_added in written)
    if layer is not None and layer not in adata.layers:
        raise InputError(f"layer '{layer}' is not in layers (layers: {list(adata.layers.keys())})",
                         fix="pass one of the layers, or layer=None for X")
    x = adata.layers[layer] if layer else adata.X
    if layer is None and getattr(adata, "isbacked", False) and x is not None and not (
            sp.issparse(x) or isinstance(x, np.ndarray)):
        # read_h5ad(backed='r'): X stays on disk (an h5py dataset or anndata's sparse dataset); it is read once
        # (a view of it, adata[mask], gives its spots' rows already read)
        x = x.to_memory() if hasattr(x, "to_memory") else np.asarray(x[()])
    if x is None:
        raise InputError("X is missing (no expression matrix)", fix="store the counts in X, or name a layer")
    coords = check_slide(adata, spatial_key=spatial_key, dims=spatial_dims, warn_shared=False)
    # kept in the object given (its own): said, with the fix that puts the spots on it
    images_out_of_register(adata, coords, spatial_key,
                           outcome="{images} in uns['spatial'] stay as given, and sc.pl.spatial draws the spots "
                                   "on {it} out of place (stcore.pl.domains draws the map without {it})")
    # spots at one position are warned of once: not again where the stored graph's builder
    # (gr.spatial_graph, or an earlier call) warned of the same spots
    neighbors = adata.uns.get(f"{graph_key}_neighbors")
    said = (neighbors.get("shared_positions") if f"{graph_key}_connectivities" in adata.obsp
            and isinstance(neighbors, Mapping) else None)
    shared = warn_shared_positions(adata, coords, spatial_key, said=said if isinstance(said, str) else None)
    x = as_csr(x, what=f"layers['{layer}']" if layer else "X", spots=adata.obs_names, genes=adata.var_names)
    try:
        check_values(x, values, flavor=hvg_flavor, spots=adata.obs_names, genes=adata.var_names,
                     marked=layer is None and "log1p" in adata.uns)
    except InputError as exc:
        if layer is not None:         # the messages speak of X, the matrix a slide's file holds: here the layer
            fix = exc.fix.replace("adata.X", f"adata.layers['{layer}']") if exc.fix else exc.fix   # its code, too
            if "non-integer values" in exc.problem:
                fix = (f"pass the layer of raw counts (kept by adata.layers['counts'] = adata.X.copy() before "
                       "normalize_total and log1p), or layer=None to read X; or say what the layer holds: "
                       "values='log_normalized' (after normalize_total and log1p) or values='normalized'")
            raise InputError(f"layers['{layer}'] (the layer passed, read in place of X): {exc.problem}",
                             fix=fix) from None
        found = counts_beside(adata, exc)                  # sc.pp.scale's X, the counts beside it
        logged = _log_normalised_raw(adata) if found is None and "negative values" in str(exc) else None
        if logged is not None:
            raise InputError("X holds negative values (scaled or centred, as after sc.pp.scale), and adata.raw.X holds "
                             f"log-normalised values of {logged} genes (every spot's expm1 sums to one total, as "
                             "scanpy's adata.raw = adata after normalize_total and log1p keeps them): the values before "
                             "scaling, not raw counts", fix="run on them: adata = adata.raw.to_adata() (it keeps obs "
                             "and obsm), then stcore.tl.domains(adata, values='log_normalized', ...)") from None
        if found is None:
            raise
        raise found from None
    if layer is None:
        check_logged_mark(adata, x, values)
    empty = int((np.asarray(x.sum(axis=1)).ravel() == 0).sum())
    if empty:
        raise InputError(f"{empty} of {adata.n_obs} spots hold no counts (every value 0); they would be put into "
                         "domains without any signal (the workflow's qc job drops them)",
                         fix="keep the spots with counts: adata = adata[np.asarray(adata.X.sum(axis=1)).ravel() > 0]"
                             ".copy()")
    hvg_params = HVGParams(n_top_genes=n_top_genes, flavor=hvg_flavor, values=values)
    if f"{graph_key}_connectivities" in adata.obsp:
        stored = adata.uns.get(f"{graph_key}_neighbors", {})
        _check_stored_graph(adata.obsp[f"{graph_key}_connectivities"], dict(stored.get("params", {})),
                            f"{graph_key}_connectivities", spatial_key, spatial_dims, coords=coords,
                            distances_key=str(stored.get("distances_key", f"{graph_key}_distances")),
                            distances=adata.obsp.get(str(stored.get("distances_key", f"{graph_key}_distances"))),
                            every=adata.obsm[spatial_key] if spatial_dims is not None else None)
    if copy:
        adata = adata.to_memory() if getattr(adata, "isbacked", False) else adata.copy()
    counts = ad.AnnData(X=x, obs=adata.obs[[]], var=adata.var[[]])
    # the workflow's qc job at its defaults: genes detected in no spot are dropped (qc.min_spots 1), so that
    # with every gene used (not more than n_top_genes) the model gets the workflow's genes
    _, detected, _ = qc_masks(counts, QCParams(), values)
    if not detected.all():
        counts = counts[:, detected].copy()
    prepared = run_hvg(counts, hvg_params)
    key = f"{graph_key}_connectivities"
    built = key not in adata.obsp
    if built:       # the workflow's graph, stored under squidpy's keys for what follows (nhood_enrichment, ...)
        add_graph(adata, coords, key_added=graph_key, shared_positions=shared, spatial_key=spatial_key,
                  spatial_dims=spatial_dims)
    adj = sp.csr_matrix(adata.obsp[key])
    if adj.nnz and not np.all(adj.data):     # zeros stored as entries (a graph thresholded by hand): no edges
        adj = adj.copy()
        adj.eliminate_zeros()
    graph_info = {"connectivities_key": key, "built": built, "n_edges": int(adj.nnz), "spatial_key": spatial_key,
                  "params": dict(adata.uns.get(f"{graph_key}_neighbors", {}).get("params", {}))}
    if spatial_dims is not None:        # the columns read, which a stored graph's params (squidpy's) do not record
        graph_info["spatial_dims"] = list(spatial_dims)
    import logging

    diagonal = adj.diagonal()            # (adj shares obsp's arrays: read, not changed in place)
    loops = int(np.count_nonzero(diagonal))
    weighted = (int(np.count_nonzero((adj.data != 1) & (adj.data != 0)))
                - int(np.count_nonzero((diagonal != 0) & (diagonal != 1))))
    if loops or weighted:
        # squidpy's transform='spectral' / 'cosine' weighs the edges, set_diag=True joins each spot to itself;
        # the methods take the graph's edges, each of weight 1, and add each spot themselves (GraphST's
        # graph; gcn_norm normalises): the stored weights and loops would be normalised and counted twice
        adj = adj.copy()
        adj.setdiag(0)
        adj.eliminate_zeros()
        adj.data[:] = 1
        graph_info |= {"unweighted": True, "n_edges": int(adj.nnz)}
        logging.getLogger(__name__).warning(
            "obsp['%s'] holds %s (as squidpy's spatial_neighbors gives them with transform='spectral' or 'cosine', "
            "or set_diag=True); the model takes the graph's edges, each of weight 1, and joins each spot to itself on "
            "its own (as stcore.gr.spatial_graph builds it): it is used so; obsp is left as it is", key,
            " and ".join(([f"{weighted} edge weights other than 1"] if weighted else [])
                         + ([f"{loops} spots joined to themselves"] if loops else [])))
    one_way = int((adj != adj.T).nnz)
    if one_way:
        # squidpy's knn graph (coord_type='generic', n_neighs=k) joins each spot to its k nearest only, one
        # way; the methods take the spatial graph as symmetric (GraphST joins i and j when either is among
        # the other's nearest, as stcore.gr.spatial_graph does): it is used so, obsp left as it is
        adj = adj.maximum(adj.T).tocsr()
        graph_info |= {"symmetrized": True, "n_edges": int(adj.nnz)}
        logging.getLogger(__name__).warning(
            "obsp['%s'] is not symmetric (%d entries without their reverse, as squidpy's knn graph joins each spot to "
            "its nearest one way); it is used as the graph that joins two spots when either is among the other's "
            "neighbours (as stcore.gr.spatial_graph builds it); obsp is left as it is", key, one_way)
    # coordinates in another order than the spots (a positions table's .to_numpy()): no pattern over the graph
    warn_no_spatial_pattern(prepared.X, adj, spatial_key)
    show = _show_progress(progress)
    own = ClusterParams(**cluster).algorithm == "own"
    given = {m: n_clusters if method_entry(m).facts.needs_n_clusters(own) else None for m in methods}
    for m in methods:     # what a method's fit would refuse and can be known now: before any method trains
        check_fit(m, train_of[m], coords, n_genes=prepared.n_vars, n_clusters=given[m])
    labelings, choices, embeddings, by_method, pcs = [], [], {}, [], {}
    for s in seeds:
        params = ClusterParams(**cluster, seed=s)
        runs = {}
        for m in methods:
            with epoch_progress(f"{m} seed {s}", enabled=show):
                result = fit(m, prepared.X, adj, coords, train_of[m], s, counts=prepared.layers["counts"],
                             n_clusters=given[m], values=values)
            choice = {}
            runs[m] = run_cluster(features_of(result, params), coords, n_clusters, params, own_labels=result.labels,
                                  owner=m, record=choice)
            choices.append(choice)
            embeddings.setdefault(m, result.embedding)
            pcs.setdefault(m, n_pcs_used(result, params))      # the components clustered, as many for every seed
        by_method.append(runs)
        labelings.append(runs[methods[0]] if len(methods) == 1 else consensus(list(runs.values())))
    every = [runs[m] for m in methods for runs in by_method]      # the workflow's order: method, then seed
    labels = every[0] if len(every) == 1 else consensus(every)
    if len(every) == 2:
        logging.getLogger(__name__).warning(two_labelings(
            f"tl.domains(method={methods if len(methods) > 1 else methods[0]!r}, seed={seeds if len(seeds) > 1 else seeds[0]!r})",
            f"{methods[0]} seed {seeds[0]}", "combine three labelings or more: seed=range(3), or three methods"))
    adata.obs[key_added] = pd.Categorical([str(v) for v in labels], categories=[str(v) for v in np.unique(labels)])
    # colours an earlier call's figure matched to the annotation (pl.domains) belong to its labels, not these:
    # scanpy's and squidpy's plots would draw these domains in them
    adata.uns.pop(f"{key_added}_colors", None)
    # the embeddings of the call whose column this one replaces (the last, or an earlier one under this key_added),
    # of methods this call does not run: they belong to labels that are gone (drawn with
    # pl.domains(basis='X_<method>'), the new domains on another call's embedding); not those a later call wrote
    last = calls_by_key(adata).get(key_added)
    if isinstance(last, Mapping) and isinstance(last.get("method"), str):
        later = last.get("embeddings_replaced")
        later = later if isinstance(later, Mapping) else {}
        for m in set(last["method"].split("+")) - set(methods) - set(later):
            adata.obsm.pop(f"X_{m}", None)
    for m, embedding in embeddings.items():
        adata.obsm[f"X_{m}"] = embedding
    chosen = combined_choice(choices, [f"{m} seed {s}" for s in seeds for m in methods])   # auto: each run's too
    from .plan.runs import cluster_settings_read      # the clustering's settings it reads, as the workflow records them
    from .provenance import data_digest

    info = {"method": "+".join(methods), "seed": seeds[0], "train": read[methods[0]] if len(methods) == 1 else read,
            "cluster": used_pcs(cluster_settings_read(_with_defaults("cluster", cluster), n_clusters),
                                pcs[methods[0]] if len(methods) == 1 else pcs),
            "n_clusters": chosen,
            "domains_found": int(len(np.unique(labels))),
            "hvg": {**used_genes(prepared.n_vars, n_top_genes), "flavor": hvg_params.selection_flavor},
            "values": values,
            "graph": graph_info,
            "input_digest": data_digest(x, adata.obs_names, adata.var_names, coords)}
    adata.obsm.pop(f"{key_added}_seeds", None)            # an earlier call's seeds and methods are not this call's
    adata.obsm.pop(f"{key_added}_methods", None)
    if len(methods) > 1:
        adata.obsm[f"{key_added}_methods"] = seed_frame(by_method[0], adata.obs_names, prefix="")
        info |= {"trained_by": "+".join(methods),
                 "methods_ARI": float(np.mean([mean_pairwise_ari(list(r.values())) for r in by_method]))}
    if len(seeds) > 1:
        adata.obsm[f"{key_added}_seeds"] = seed_frame(dict(zip(seeds, labelings)), adata.obs_names)
        info |= {"seed": "consensus", "consensus_of": ",".join(map(str, seeds)),
                 "seed_ARI": mean_pairwise_ari(labelings), "embedding_of_seed": seeds[0]}
    columns = [c for c in dict.fromkeys([*written, key_added]) if c in adata.obs]
    # the records of the earlier calls whose columns are kept (another key_added): each column is titled by its own call
    earlier = {k: r for k, r in calls_by_key(adata).items() if k != key_added and k in columns}
    for r in earlier.values():      # obsm['X_<method>'] of a method both ran is this call's now, not theirs
        replaced = {m: key_added for m in str(r.get("method", "")).split("+") if m in embeddings}
        if replaced:
            r["embeddings_replaced"] = {**(r.get("embeddings_replaced") or {}), **replaced}
    adata.uns["stcore"] = (info | {"key": key_added, "columns": columns, "labelling": labelling(adata.obs[key_added])}
                           | ({"by_key": earlier} if earlier else {}))
    return adata if copy else None


def replaced_since(adata: ad.AnnData, col: str, now: dict | None = None) -> bool:
    """Whether ``obs[col]`` groups the same spots otherwise than the :func:`domains` call that wrote it left
    them (its record's ``labelling``, :func:`calls_by_key`): labels assigned to the column since (renamed
    domains group them as they were).  ``now``: the column's :func:`labelling`, where the caller has it."""
    made = calls_by_key(adata).get(col, {}).get("labelling")
    if not isinstance(made, Mapping) or made.get("labels") is None or col not in adata.obs:
        return False
    now = labelling(adata.obs[col]) if now is None else now
    return now["spots"] == made.get("spots") and now["labels"] != made["labels"]


def call_words(adata: ad.AnnData, col: str) -> str:
    """The call that wrote ``obs[col]`` in words: 'graphst, seed 0', 'graphst+banksy, seeds 0, 1, 2'."""
    return record_words(calls_by_key(adata).get(col, {}))


def record_words(record: Mapping) -> str:
    """A call's record (its ``method`` and ``seed``, with ``'consensus'`` its ``consensus_of``) in words, as
    :func:`call_words` says it: 'graphst, seed 0', 'graphst+banksy, seeds 0, 1, 2'."""
    over = (f"seeds {str(record.get('consensus_of', '')).replace(',', ', ')}" if str(record.get("seed")) == "consensus"
            else f"seed {record.get('seed')}")
    return f"{record.get('method')}, {over}"


def calls_by_key(adata: ad.AnnData) -> dict[str, dict]:
    """{obs column: the record of the :func:`domains` call that wrote it}: the last call's ``uns['stcore']``
    under its ``key``, and those of earlier calls with another ``key_added`` (``uns['stcore']['by_key']``; a
    record written before it was kept, or a workflow's ``domains.h5ad``, holds the last call's only)."""
    record = adata.uns.get("stcore")
    if not isinstance(record, Mapping):
        return {}
    earlier = record.get("by_key")
    calls = {str(k): dict(r) for k, r in earlier.items() if isinstance(r, Mapping)} if isinstance(earlier, Mapping) \
        else {}
    if isinstance(record.get("key"), str):
        calls[record["key"]] = {k: v for k, v in record.items() if k not in ("by_key", "columns")}
    return calls


def labelling(values: pd.Series) -> dict[str, str]:
    """Digests of the spots (their ids, in order) and of how ``values``, an ``obs`` column, groups
    them (each spot's domain numbered by first appearance: renaming the domains keeps it), and
    their number:
    ``uns['stcore']['labelling']`` of the column a call wrote, so that a column replaced since
    (another call's labels assigned to it, one seed's picked from ``obsm[key + '_seeds']``), or one
    that spans more spots than the call's (results joined with ``anndata.concat(...,
    uns_merge='first')``), is not titled with this call's method and seeds (:func:`stcore.pl.domains`);
    and the labels of the :data:`SKETCH` spots of the smallest id hashes (``'sketch'``, ``'sketch_labels'``),
    so that fewer spots are judged too (:func:`part_of_labelling`: one slide taken out of such joined results)."""
    import hashlib

    names = hashlib.sha1("\n".join(map(str, values.index)).encode())
    groups = names.copy()
    groups.update(np.ascontiguousarray(pd.factorize(values.astype(object))[0], dtype=np.int64).tobytes())
    hashes = _spot_hashes(values.index)
    first = np.argsort(hashes, kind="stable")[:SKETCH]
    return {"spots": names.hexdigest(), "labels": groups.hexdigest(), "n_spots": int(len(values)),
            "sketch": [int(h) for h in hashes[first]], "sketch_labels": [str(v) for v in values.iloc[first]]}


#: How many spots :func:`labelling` keeps the label of (those of the smallest id hashes: its ``'sketch'``).
SKETCH = 64


def _spot_hashes(index) -> np.ndarray:
    """A 63-bit hash of each spot id, as text (pandas' hash, the same in every session)."""
    ids = pd.Series(np.asarray(index).astype(str), dtype=object)
    return (pd.util.hash_pandas_object(ids, index=False).to_numpy(dtype=np.uint64) >> np.uint64(1)).astype(np.int64)


def part_of_labelling(values: pd.Series, made) -> bool | None:
    """Whether ``values`` (an ``obs`` column) are spots of the labelling ``made`` (:func:`labelling`'s record)
    grouped as it grouped them (renamed domains too): all of them or some (a subset; not one slide taken out of
    results joined with ``anndata.concat(..., uns_merge='first')``, which keeps the first slide's record).  Every
    spot whose id hash is at most the largest of the record's ``'sketch'`` must be one of its spots, as each of a
    part's is, and those spots' labels must match its ``'sketch_labels'`` one to one; another slide's spots, or
    other domains, fail one or the other.  None for a record without a sketch."""
    sketch = made.get("sketch") if isinstance(made, Mapping) else None
    if sketch is None:
        return None
    kept = np.asarray(sketch, dtype=np.int64).ravel()
    hashes = _spot_hashes(values.index)
    if len(kept) >= SKETCH and len(kept):
        below = hashes <= kept.max()
    else:
        below = np.ones(len(hashes), dtype=bool)      # the call had fewer spots: every one is in its sketch
    if not np.isin(hashes[below], kept).all():
        return False
    was = dict(zip(kept.tolist(), np.asarray(made.get("sketch_labels", []), dtype=object).astype(str)))
    pairs = {(was[h], str(v)) for h, v in zip(hashes[below].tolist(), values.to_numpy()[below]) if h in was}
    return len({p[0] for p in pairs}) == len(pairs) == len({p[1] for p in pairs})


def _columns_written(adata: ad.AnnData) -> list[str]:
    """The ``obs`` columns that earlier calls wrote, as their record lists them (a workflow's
    ``domains.h5ad``: its ``key``)."""
    from collections.abc import Mapping

    record = adata.uns.get("stcore")
    if not isinstance(record, Mapping):
        return []
    columns = record.get("columns", [record.get("key")])
    return [str(c) for c in np.atleast_1d(columns) if isinstance(c, str)]


def _train_by_method(train: dict, methods: list[str]) -> dict[str, dict]:
    """Each method's train block: ``train`` itself, its ``peer`` settings given to every peer of the call; or,
    where ``train['peer']`` is keyed by method names (``{'banksy': {'n_top_genes': 1000}}``, as the workflow's
    config gives each method its own ``methods.<name>.train.peer``), ``train`` with each peer's own block (a
    peer without one: its package's defaults).  Peer settings in a call of built-in models only, a block of a
    method the call does not run or that reads no peer settings, a block that is not a dict, and method names
    mixed with settings are refused."""
    from .registry import METHODS

    peer = train.get("peer")
    if peer and all(METHODS[m].builtin for m in methods):
        raise InputError(f"train['peer'] holds settings ({', '.join(map(str, peer))}), which only the peer methods "
                         f"read, but the call runs none (method={methods!r}): they would be read by no method",
                         fix="give the built-in models train's own keys (train={'epochs': 300}), or add the peer to "
                             "method= (method=['graphst', 'banksy'])")
    if not isinstance(peer, Mapping) or not any(k in METHODS for k in peer):
        return {m: train for m in methods}
    named = [str(k) for k in peer if k in METHODS]
    others = [str(k) for k in peer if k not in METHODS]
    example = "train={'peer': {'banksy': {'n_top_genes': 1000}, 'cellcharter': {'n_layers': 2}}}"
    if others:
        raise InputError(f"train['peer'] mixes settings ({', '.join(others)}) with blocks by method "
                         f"({', '.join(named)})", fix=f"give each peer its settings in its own block: {example}, or "
                                                      "one block of settings for every peer of the call")
    for m in named:
        if m not in methods:
            raise InputError(f"train['peer'] holds settings for '{m}', which this call does not run "
                             f"(method={methods!r}): they would be read by no method",
                             fix=f"add '{m}' to method=, or remove its block")
        if METHODS[m].builtin:
            raise InputError(f"train['peer'] holds settings for '{m}', which reads no peer settings (train['peer'] "
                             "is for the peer methods, each named as its package names its arguments)",
                             fix=f"give '{m}' its settings as train's own keys (train={{'epochs': 300}}), and "
                                 "keep train['peer'] for the peers")
        if not isinstance(peer[m], Mapping):
            raise InputError(f"train['peer']['{m}'] is not a dict of settings ({type(peer[m]).__name__})",
                             fix=f"give it as a dict: {example}")
    return {m: train if METHODS[m].builtin else {**train, "peer": dict(peer.get(m, {}))} for m in methods}


def _with_defaults(section: str, settings: dict) -> dict:
    """``settings`` of the config schema's ``section`` with every key it leaves out at the schema's
    default (the workflow's config gets the same defaults when it is read)."""
    import copy

    from .validate import config_schema

    props = config_schema()["$defs"][section]["properties"]
    return {k: copy.deepcopy(spec["default"]) for k, spec in props.items() if "default" in spec} | dict(settings)


def _log_normalised_raw(adata) -> int | None:
    """The number of genes of ``adata.raw`` where it holds log-normalised values (every spot's expm1
    sums to one total), as scanpy's tutorials leave it (``adata.raw = adata`` after normalize_total
    and log1p, before the genes are subset and scaled), else None."""
    from .io import as_csr
    from .validate import _one_total

    raw = adata.raw
    if raw is None or raw.n_vars == 0:
        return None
    x = as_csr(raw.X)
    if x.nnz == 0 or float(x.data.min()) < 0 or not _one_total(x, expm1=True):
        return None
    return int(raw.n_vars)


def _check_stored_graph(adj, params: dict, key: str, spatial_key: str = "spatial", spatial_dims=None,
                        coords=None, distances=None, distances_key: str = "spatial_distances", every=None) -> None:
    """A graph built from other coordinates than ``obsm[spatial_key]`` (its ``params`` name the
    ``spatial_key`` and ``spatial_dims`` it was built from, as :func:`stcore.gr.spatial_graph`
    keeps them; squidpy's graphs do not, and are taken as they are) is refused: its neighbours are
    another frame's.  A graph built by :func:`stcore.gr.spatial_graph` in ``'knn'`` mode, or by squidpy's
    ``spatial_neighbors`` with ``coord_type='generic'`` and ``n_neighs`` (no radius, no Delaunay),
    gives every spot at least ``n_neighbors`` neighbours; fewer means it was built on spots that are
    no longer all there (spots filtered after the graph was made: anndata keeps the rows that are
    left).  A Delaunay triangulation (squidpy's ``delaunay=True``: no ``n_neighbors`` in its params)
    with fewer edges than a triangulation of these spots was built so too
    (:func:`stcore.graph.delaunay_gap`); one kept under the ``n_neighbors`` an older squidpy stored
    with it is taken as a triangulation, not a knn graph.  squidpy's grid graphs give border spots
    fewer by design and are not checked.  A graph
    that joins no two spots (squidpy's ``spatial_neighbors`` with a ``radius`` below the spots'
    spacing: a radius in other units) is refused, as the workflow's graph step refuses such a
    radius; spots it leaves without a neighbour are warned of (``coords``: the spots' positions, for
    the distance to their nearest neighbour).  A generic graph (stcore's, squidpy's
    ``coord_type='generic'``) whose edges' stored lengths (``distances``, ``obsp[distances_key]``) are
    not the spots' distances at ``coords`` (:func:`stcore.graph.moved_edges`) was built on other
    positions (the coordinates were changed since, e.g. put in the spots' order) and is refused; where
    ``spatial_dims`` named two of the entry's columns (``every``: all of them) and the lengths are the
    spots' distances over every column (squidpy's ``spatial_neighbors`` takes them all: x, y and z),
    the graph is named as built over them.  Each fix builds the graph of the call's coordinates."""
    import scipy.sparse as sp

    # the call that builds the graph of these coordinates, under this key
    build = ("stcore.gr.spatial_graph(adata" + (f", spatial_key='{spatial_key}'" if spatial_key != "spatial" else "")
             + (f", spatial_dims={tuple(spatial_dims)!r}" if spatial_dims is not None else "")
             + (f", key_added='{key[:-len('_connectivities')]}'" if key.endswith("_connectivities")
                and key != "spatial_connectivities" else "") + ")")

    built_from = (params.get("spatial_key"), [str(d) for d in np.ravel(params.get("spatial_dims", [0, 1]))])
    given = (spatial_key, [str(d) for d in (spatial_dims if spatial_dims is not None else [0, 1])])
    moved = compared = None
    if distances is not None and coords is not None and params.get("coord_type") == "generic":
        from .graph import moved_edges

        moved, compared = moved_edges(distances, coords)
    # columns named otherwise (('x', 'y') then, kept alone, (0, 1)) whose edges' lengths are these spots' distances
    # are the same columns
    renamed = built_from[0] == given[0] and moved == 0 and bool(compared)
    if built_from[0] is not None and built_from != given and not renamed:
        both = built_from[1] != given[1]

        def named(k, dims):
            return f"obsm['{k}']" + (f" (columns {', '.join(dims)})" if both else "")
        dims = f", spatial_dims={tuple(spatial_dims)!r}" if spatial_dims is not None else ""
        raise InputError(f"obsp['{key}'] was built from {named(*built_from)}, not from {named(*given)} as this call "
                         "names: its neighbours are those of other coordinates",
                         fix=f"build it from these: stcore.gr.spatial_graph(adata, spatial_key='{spatial_key}'{dims}) "
                             f"(it replaces the stored graph; key_added= keeps both, then pass graph_key=), or call "
                             f"tl.domains with the coordinates the graph was built from")
    if moved and every is not None and np.ndim(every) == 2 and np.shape(every)[1] > 2:
        try:
            over_all = moved_edges(distances, np.asarray(every, dtype=float))[0]
        except (TypeError, ValueError):
            over_all = None
        if over_all == 0:
            from .validate import _columns

            raise InputError(f"obsp['{key}'] was built over the {np.shape(every)[1]} columns of obsm['{spatial_key}'] "
                             f"({_columns(every)}): its edges' lengths (obsp['{distances_key}']) are the spots' "
                             "distances over all of them (squidpy's spatial_neighbors takes every column: x, y and z), "
                             f"not over the two that spatial_dims={tuple(spatial_dims)!r} names: its neighbours are "
                             "not those of these coordinates",
                             fix=f"build the graph of these two: {build} (or del adata.obsp['{key}'] and tl.domains "
                                 "builds it)")
    if moved:
        raise InputError(f"obsp['{key}'] was built on other positions than obsm['{spatial_key}'] holds now: {moved} "
                         f"of its {compared} edges' lengths (obsp['{distances_key}']) are not their spots' distances "
                         "(the coordinates were changed since it was built, e.g. put in the spots' order): its "
                         "neighbours are not these spots' neighbours",
                         fix=f"build it again on these coordinates: {build} (or del "
                             f"adata.obsp['{key}'] and tl.domains builds it)")
    joined = sp.csr_matrix(adj, copy=True)
    joined.setdiag(0)
    joined.eliminate_zeros()
    degree = np.asarray((joined + joined.T).getnnz(axis=1)).ravel()
    alone = int((degree == 0).sum())
    from .graph import MAX_RADIUS_NEIGHBOURS, delaunay_gap, spot_spacing

    mean = float(degree.mean()) if degree.size else 0.0
    radius = params.get("radius")
    built = f" (built with radius {radius}, as its params say)" if isinstance(radius, (int, float)) and radius > 0 \
        else ""
    nearest = spot_spacing(coords) if coords is not None and (alone or mean > MAX_RADIUS_NEIGHBOURS) else float("nan")
    if alone and alone == degree.size:
        raise InputError(f"obsp['{key}'] joins no two spots{built}; the median distance to a spot's nearest "
                         f"neighbour is {nearest:.4g}: the model would train with no spatial information",
                         fix=f"build it again: {build} (or squidpy's spatial_neighbors "
                             f"with a radius above {nearest:.4g}, in the units of the coordinates), or del "
                             f"adata.obsp['{key}'] and tl.domains builds it")
    alone_said = (key, alone, degree.size, built, nearest) if alone else None     # said once the graph passes
    if mean > MAX_RADIUS_NEIGHBOURS:
        # a radius in other units (microns for pixels) joins each spot to its whole region: the workflow's graph
        # step refuses such a radius; the model would average each spot over hundreds
        raise InputError(f"obsp['{key}'] joins each spot to {mean:.0f} others on average{built}; the median distance "
                         f"to a spot's nearest neighbour is {nearest:.4g} (the workflow's graph step refuses a radius "
                         f"graph of more than {MAX_RADIUS_NEIGHBOURS}): each spot would be averaged over its whole "
                         "region", fix=f"build it again: {build} (or squidpy's spatial_neighbors "
                         f"with a radius of a few times {nearest:.4g}, in the units of the coordinates), or del "
                         f"adata.obsp['{key}'] and tl.domains builds it")
    # squidpy's generic graphs without a radius: its knn graph (params n_neighbors) or its Delaunay
    # triangulation (delaunay=True: params without n_neighbors; squidpy before its graph builders kept
    # n_neighbors there too, 6 by default, which a triangulation does not give every spot)
    squidpy_generic = (params.get("coord_type") == "generic" and params.get("radius") is None
                       and "delaunay" not in params)
    gap = None
    if squidpy_generic and coords is not None and not params.get("n_neighbors"):
        gap = delaunay_gap(joined, coords, triangulation=True)
    if gap is not None:
        if gap[0] and "spatial_key" in params and "mode" not in params:
            # stcore's mark (spatial_key) without the settings it records since: the workflow's knn graph, in a
            # domains.h5ad written before the file recorded them (was refused as a triangulation of other spots)
            raise InputError(f"obsp['{key}'] is a graph stcore stored before it recorded the graph's settings (a "
                             "workflow's domains.h5ad or gr.spatial_graph of an earlier version: its params in "
                             "uns['spatial_neighbors'] name no mode or n_neighbors): it cannot be checked against "
                             "these spots",
                             fix=f"del adata.obsp['{key}'] and tl.domains builds the workflow's graph (or {build}), "
                                 "or write the file again with this version of the workflow (snakemake --forcerun "
                                 "export export_consensus export_ensemble export_ensemble_consensus)")
        _refuse_a_triangulation_of_other_spots(gap, key, build)
        return _say_alone(alone_said)
    if (params.get("mode") == "knn" or squidpy_generic) and params.get("n_neighbors"):
        k = int(params["n_neighbors"])
        # neighbours other than the spot itself (squidpy's set_diag=True stores each spot as its own, one more
        # entry per row) and not stored zeros
        short = int((joined.getnnz(axis=1) < k).sum())
        gap = delaunay_gap(joined, coords) if short and squidpy_generic and coords is not None else None
        if gap is not None and not gap[0]:   # a triangulation of these spots under an older squidpy's n_neighbors
            return _say_alone(alone_said)
        if short:
            raise InputError(f"obsp['{key}'] gives {short} spots fewer than the {k} neighbours its knn graph gave each "
                             "spot: it was built before spots were removed", fix=f"build it again on these spots: "
                             f"{build} (or del adata.obsp['{key}'] and tl.domains builds it)")
    _say_alone(alone_said)


def _say_alone(alone_said: tuple | None) -> None:
    """The warning of the spots a stored graph that passed leaves without a neighbour."""
    if alone_said:
        import logging

        logging.getLogger(__name__).warning(
            "obsp['%s'] leaves %d of %d spots without a neighbour%s (median nearest-neighbour distance %.4g); they are "
            "trained without spatial information", *alone_said)


def _refuse_a_triangulation_of_other_spots(gap: tuple[int, int, int], key: str,
                                           build: str = "stcore.gr.spatial_graph(adata)") -> None:
    """A Delaunay graph (squidpy's ``delaunay=True``) with fewer edges than a triangulation of these
    spots (:func:`stcore.graph.delaunay_gap`) was built before spots were removed: refused, as a knn
    graph that gives spots fewer than its k is."""
    lacking, n_tri, fewer = gap
    if lacking:
        raise InputError(f"obsp['{key}'] is a Delaunay triangulation (squidpy's delaunay=True) that lacks {lacking} "
                         f"of the {n_tri} edges a triangulation of these spots has, and gives {fewer} spots fewer "
                         "neighbours than it: it was built before spots were removed, and the spots around each "
                         "removed one keep no edge across the gap",
                         fix=f"build it again on these spots: squidpy.gr.spatial_neighbors(adata, coord_type='generic', "
                             f"delaunay=True) or {build} (or del adata.obsp['{key}'] and "
                             "tl.domains builds it)")


def _show_progress(progress: bool | None) -> bool:
    """``progress`` when given; else whether the session is interactive (an IPython kernel, or
    stderr a terminal) and scanpy's verbosity is at least 'warning' (its default)."""
    if progress is not None:
        return bool(progress)
    import sys

    try:
        import scanpy as sc

        if int(sc.settings.verbosity) < 1:
            return False
    except ImportError:
        pass
    shell = sys.modules.get("IPython")
    if shell is not None:
        ip = shell.get_ipython()
        if ip is not None and "IPKernelApp" in getattr(ip, "config", {}):
            return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _settings_doc(section: str, indent: str = "        ") -> str:
    """The keys of the config schema's ``section`` with their defaults and descriptions, as a
    list for a docstring (the schema is the one place they are written)."""
    import textwrap

    from .validate import config_schema

    lines = []
    for name, spec in config_schema()["$defs"][section]["properties"].items():
        shown = f"default ``{spec['default']!r}``" if "default" in spec else "no default"
        lines += textwrap.wrap(f"- ``{name}`` ({shown}): {spec.get('description', '')}", width=100,
                               initial_indent=indent, subsequent_indent=indent + "  ")
    return "\n".join(lines) + "\n"


if domains.__doc__:
    domains.__doc__ = domains.__doc__.replace("{train_keys}", _settings_doc("train")).replace(
        "{cluster_keys}", _settings_doc("cluster"))
