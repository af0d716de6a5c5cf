"""One AnnData per run that a scanpy or squidpy user opens as usual (``domains.h5ad``).

- ``X``: the slide's raw counts for every gene kept by QC (sparse CSR), ``obs`` as read
  (with the annotation, if any) plus ``obs['domain']`` (categorical).  A column that stcore did
  not write is never overwritten (the rule of :func:`stcore.validate.check_key`, which
  :func:`stcore.tl.domains` applies too): where the slide's own obs already has a column
  ``domain`` (an annotation, as the simulated slides' truth), the domains go to
  ``obs['stcore_domain']``, the name the notebook API's error suggests; ``uns['stcore']['key']``
  names the column used, and a slide that has both columns is refused;
- ``obsm['spatial']``: coordinates; ``obsm['X_<method>']``: the method's embedding;
- ``obsp['spatial_connectivities']`` / ``obsp['spatial_distances']``: the spatial graph the
  model used, under squidpy's names, with ``uns['spatial_neighbors']`` pointing at them;
- ``uns['stcore']``: method, seed, the train and cluster settings, provenance (versions,
  machine, hashes); ``uns['spatial']``: as the reader left it (Space Ranger scale factors).

The consensus of a method's seeds (``<method>/consensus/domains.h5ad``) has the combined
domains in ``obs['domain']``, every seed's own in ``obsm['domain_seeds']`` (a column per seed),
their mean pairwise ARI in ``uns['stcore']['seed_ARI']``, and the first seed's embedding.
"""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["domains_adata", "seed_frame", "spatial_distances", "store_graph"]


def spatial_distances(adj: sp.spmatrix, coords: np.ndarray) -> sp.csr_matrix:
    """The edges of ``adj`` weighted by the Euclidean distance between their spots (sparse)."""
    a = sp.coo_matrix(adj)
    xy = np.asarray(coords, dtype=np.float64)
    d = np.linalg.norm(xy[a.row] - xy[a.col], axis=1)
    return sp.csr_matrix((d, (a.row, a.col)), shape=a.shape)


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


def seed_frame(labelings: dict, index, prefix: str = "seed") -> pd.DataFrame:
    """Each labeling as a categorical column ``<prefix><name>``: a seed's as ``seed<seed>`` (for
    ``obsm['<key>_seeds']``), a method's as its name with ``prefix=''`` (``obsm['<key>_methods']``)."""
    return pd.DataFrame({f"{prefix}{name}": pd.Categorical([str(v) for v in np.asarray(lab)])
                         for name, lab in labelings.items()}, index=index)


def domains_adata(counts: ad.AnnData, labels, embedding: np.ndarray, adj: sp.spmatrix, *, method: str,
                  info: dict, key_added: str = "domain", seed_labels: dict | None = None,
                  method_labels: dict | None = None) -> ad.AnnData:
    """``counts`` (the QC'd slide with raw counts) with the run's domains, embedding and
    graph added under the names above; ``info`` goes to ``uns['stcore']``.  ``seed_labels``
    ({seed: labels}, for a consensus of seeds): each seed's domains, in ``obsm['<key>_seeds']``;
    ``method_labels`` ({method: labels}, for a combination of methods: config ``ensembles``): each
    method's domains, in ``obsm['<key>_methods']``."""
    from .validate import output_key

    out = counts.copy()
    key_added = output_key(out, key_added)        # the slide's own column: the second name
    if not sp.issparse(out.X):
        out.X = sp.csr_matrix(out.X)
    labels = np.asarray(labels)
    if len(labels) != out.n_obs or embedding.shape[0] != out.n_obs or adj.shape[0] != out.n_obs:
        raise ValueError(f"{out.n_obs} spots but {len(labels)} labels, {embedding.shape[0]} embedding rows and "
                         f"a graph of {adj.shape[0]}")
    names = sorted(pd.unique(labels), key=lambda v: (str(type(v)), v))
    out.obs[key_added] = pd.Categorical([str(v) for v in labels], categories=[str(v) for v in names])
    out.obsm[f"X_{method}"] = np.asarray(embedding, dtype=np.float32)
    if seed_labels:
        out.obsm[f"{key_added}_seeds"] = seed_frame(seed_labels, out.obs_names)
    if method_labels:
        out.obsm[f"{key_added}_methods"] = seed_frame(method_labels, out.obs_names, prefix="")
    store_graph(out, adj, np.asarray(out.obsm["spatial"], dtype=np.float64))
    out.uns["stcore"] = _plain(info) | {"key": key_added}
    return out


def _plain(value):
    """Nested dicts / lists / scalars that h5ad can store (None becomes '')."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value] if value else []
    if value is None:
        return ""
    if isinstance(value, (np.generic,)):
        return value.item()
    return value
