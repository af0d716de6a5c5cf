"""One AnnData per run that a scanpy or squidpy user opens as usual (``domains.h5ad``).

- ``X``: the slide's raw counts for every gene kept by QC (sparse CSR; a slide whose sheet says
  ``values: normalized`` or ``log_normalized``: its values as given, named in ``uns['stcore']['values']``,
  log-normalised ones marked ``uns['log1p']`` as scanpy marks them), ``obs`` as read
  (with the annotation, if any) plus ``obs['domain']`` (categorical).  A column that stcore did
  not write is never overwritten (the rule of :func:`stcore.validate.check_key`, which
  :func:`stcore.tl.domains` applies too): where the slide's own obs already has a column
  ``domain`` (an annotation, as the simulated slides' truth), the domains go to
  ``obs['stcore_domain']``, the name the notebook API's error suggests; ``uns['stcore']['key']``
  names the column used, and a slide that has both columns is refused;
- ``obsm['spatial']``: coordinates; ``obsm['X_<method>']``: the method's embedding;
- ``obsp['spatial_connectivities']`` / ``obsp['spatial_distances']``: the spatial graph the
  model used, under squidpy's names, with ``uns['spatial_neighbors']`` pointing at them;
- ``uns['stcore']``: method, seed, the train settings the model read (:func:`stcore.methods.recorded_train`;
  per method for a combination) and the cluster settings, provenance (versions,
  machine, hashes); ``uns['spatial']``: as the reader left it (Space Ranger scale factors).

The consensus of a method's seeds (``<method>/consensus/domains.h5ad``) has the combined
domains in ``obs['domain']``, every seed's own in ``obsm['domain_seeds']`` (a column per seed),
their mean pairwise ARI in ``uns['stcore']['seed_ARI']``, and the first seed's embedding.

A slide read from a SpatialData store also gets ``domains.zarr`` beside its ``domains.h5ad``
(:func:`domains_spatialdata`): the domains as a table annotating the store's own shapes.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["combined_choice", "domains_adata", "domains_spatialdata", "run_metrics", "seed_frame"]


def seed_frame(labelings: dict, index, prefix: str = "seed") -> pd.DataFrame:
    """Each labeling as a categorical column ``<prefix><name>``: a seed's as ``seed<seed>`` (for
    ``obsm['<key>_seeds']``), a method's as its name with ``prefix=''`` (``obsm['<key>_methods']``)."""
    return pd.DataFrame({f"{prefix}{name}": pd.Categorical([str(v) for v in np.asarray(lab)])
                         for name, lab in labelings.items()}, index=index)


def domains_adata(counts: ad.AnnData, labels, embedding: np.ndarray, adj: sp.spmatrix, *, method: str,
                  info: dict, key_added: str = "domain", seed_labels: dict | None = None,
                  method_labels: dict | None = None, truth: str | None = None, values: str = "counts",
                  graph: dict | None = None, reference=None) -> ad.AnnData:
    """``counts`` (the QC'd slide with raw counts) with the run's domains, embedding and
    graph added under the names above; ``info`` goes to ``uns['stcore']``.  ``seed_labels``
    ({seed: labels}, for a consensus of seeds): each seed's domains, in ``obsm['<key>_seeds']``;
    ``method_labels`` ({method: labels}, for a combination of methods: config ``ensembles``): each
    method's domains, in ``obsm['<key>_methods']``.  The domains' colours in the run's figure
    (``domains.png``: matched to the annotation ``obs[truth]`` when given; without one, to the domains
    ``reference`` of the run the slide's maps share, where given) go to
    ``uns['<key>_colors']`` (and the annotation's to ``uns['<truth>_colors']``), so scanpy's and
    squidpy's plots draw them alike.  ``values``: what ``X`` holds (the sample sheet's ``values``),
    recorded in ``uns['stcore']['values']``; log-normalised values are also marked as scanpy marks
    them (``uns['log1p']``), so ``sc.pp.log1p`` warns that X is already logged and
    ``sc.tl.rank_genes_groups`` reads them as logged.  ``graph``: the settings ``adj`` was built with
    (the graph step's ``graph.json``: ``mode``, ``n_neighbors``, ``radius``), kept in its params
    (:func:`stcore.graph.graph_record`) as :func:`stcore.gr.spatial_graph` keeps them, so that
    ``tl.domains`` on this file (or on one slide of a group's) takes its knn graph for one."""
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
    from .graph import graph_record, store_graph

    built = (graph_record(**{k: graph[k] for k in ("mode", "n_neighbors", "radius") if k in graph}) if graph
             else {"spatial_key": "spatial"})
    store_graph(out, adj, np.asarray(out.obsm["spatial"], dtype=np.float64), params=built)
    from .tl import labelling

    out.uns["stcore"] = _plain(info) | {"key": key_added, "values": str(values), "labelling": labelling(out.obs[key_added])}
    if values == "log_normalized" and "log1p" not in out.uns:
        out.uns["log1p"] = {"base": None}        # as sc.pp.log1p leaves it: the natural log of 1 + x
    from .evaluate import figure_colors
    from .pl import _store_colors

    truth = truth if truth and truth in out.obs and truth != key_added else None
    drawn = figure_colors(labels, out.obs[truth] if truth else None, out.uns.get(f"{truth}_colors") if truth else None,
                          reference=reference)
    _store_colors(out, key_added, drawn["found domains"])
    if truth:
        _store_colors(out, truth, drawn["annotation"])
    return out


def run_metrics(rows: pd.DataFrame) -> dict:
    """A run's ``metrics.tsv`` as ``uns['stcore']['metrics']``: its row, without empty values.  A
    group's run has a row per slide: the run's and the group's values (provenance, iLISI,
    domains_shared, ...) as they are, and each slide's own (:data:`stcore.evaluate.SLIDE_COLUMNS`: its
    ARI, NMI, spots, ..., and any other value that differs between the rows) under ``'per_slide'``
    ({slide: {metric: value}}); the first slide's row was taken as the run's."""
    from .evaluate import SLIDE_COLUMNS

    def plain(row: dict) -> dict:
        return {k: v for k, v in row.items() if not pd.isna(v)}

    if len(rows) <= 1:
        return plain(rows.iloc[0].to_dict()) if len(rows) else {}
    own = [c for c in rows.columns if c in SLIDE_COLUMNS or rows[c].nunique(dropna=False) > 1]
    alike = [c for c in rows.columns if c not in own]
    return plain(rows.iloc[0][alike].to_dict()) | {
        "per_slide": {str(slide): plain(row) for slide, row in zip(rows["sample"], rows[own].drop(columns="sample")
                                                                   .to_dict("records"))}}


def combined_choice(choices: list[dict], runs: list[str]) -> dict:
    """How the number of domains of combined runs was set (``uns['stcore']['n_clusters']``), as
    :func:`stcore.tl.domains` records it: the first run's record and, where any run chose its own
    (``auto``), every run's choice by name (``chosen_by_run``: ``{'graphst seed 0': 6, ...}``)."""
    first = dict(choices[0])
    if len(choices) > 1 and any(c.get("by") != "given" for c in choices):
        first["chosen_by_run"] = {run: int(c["chosen"]) for run, c in zip(runs, choices)}
    return first


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


def domains_spatialdata(store: str | os.PathLike, domains: ad.AnnData, out: str | os.PathLike) -> None:
    """A SpatialData store at ``out`` with the domains of ``domains`` (a ``domains.h5ad``, or an
    AnnData after :func:`stcore.tl.domains`, read from ``store``) as the table ``'domains'``
    annotating the same shapes as the slide's table in ``store``: the same element, region key and
    instance ids, so ``spatialdata.read_zarr(out)`` shows them on the shapes (napari-spatialdata,
    ``spatialdata-plot``).  The table holds ``obs[<key>]`` (the domains, categorical in the order of
    ``domains``; the key ``uns['stcore']['key']`` names) with their colours (``uns['<key>_colors']``,
    where ``domains`` has them), the embedding, coordinates and each seed's or method's domains
    (``obsm['<key>_seeds']``, ``['<key>_methods']``) in ``obsm``, and ``uns['stcore']``;
    the store holds that shapes element and the table (not the images: add the table to the
    slide's own store with ``sdata.tables['domains'] = spatialdata.read_zarr(out)['domains']``).
    A table that annotates no shapes (coordinates in its ``obsm['spatial']`` only) gets circles
    at the coordinates, ``'domains_spots'``.  ``out`` is whole or absent: written beside it, then
    renamed."""
    import spatialdata as sd
    from spatialdata.models import ShapesModel, TableModel

    from .io import spatialdata_table

    sdata = sd.read_zarr(store)
    table = sdata.tables[spatialdata_table(sdata, store)]
    record = dict(domains.uns.get("stcore", {}))
    key = record.get("key", "domain")
    attrs = table.uns.get("spatialdata_attrs", {})
    region, region_key, instance_key = attrs.get("region"), attrs.get("region_key"), attrs.get("instance_key")
    region = region[0] if isinstance(region, (list, tuple)) and len(region) == 1 else region
    missing = domains.obs_names.difference(table.obs_names)
    if len(missing):
        raise ValueError(f"{len(missing)} spots of the domains are not in the store's table (first: {missing[0]}): "
                         f"the domains were not found on {store}")
    if isinstance(region, str) and region in sdata.shapes and instance_key in table.obs:
        obs = table.obs.loc[domains.obs_names, [region_key, instance_key]].copy()
        shapes = {region: sdata.shapes[region]}
    else:
        xy = np.asarray(domains.obsm["spatial"], dtype=float)
        from scipy.spatial import cKDTree

        gaps = cKDTree(xy).query(xy, k=2)[0][:, 1] if len(xy) > 1 else np.ones(1)
        region, region_key, instance_key = "domains_spots", "region", "spot_id"
        shapes = {region: ShapesModel.parse(xy, geometry=0, radius=np.full(len(xy), float(np.median(gaps)) / 2),
                                            index=np.arange(len(xy)))}
        obs = pd.DataFrame({region_key: region, instance_key: np.arange(len(xy))}, index=domains.obs_names)
    obs[region_key] = pd.Categorical(obs[region_key].astype(str))
    # categorical in the domains' own order, in their figure's colours: as text, spatialdata-plot drew
    # them as one unlabelled colour scale
    obs[key] = domains.obs[key].astype("category").array
    # arrays (embedding, coordinates) and frames (a consensus's seeds, a combination's methods: labels as text)
    obsm = {name: (np.asarray(value) if isinstance(value, np.ndarray) else
                   pd.DataFrame(value.astype(str).to_numpy(), index=obs.index, columns=[str(c) for c in value.columns]))
            for name, value in domains.obsm.items() if isinstance(value, (np.ndarray, pd.DataFrame))}
    out_table = ad.AnnData(obs=obs, obsm=obsm)
    out_table.uns["stcore"] = record
    if f"{key}_colors" in domains.uns:
        out_table.uns[f"{key}_colors"] = np.asarray(domains.uns[f"{key}_colors"], dtype=object)
    out_table = TableModel.parse(out_table, region=region, region_key=region_key, instance_key=instance_key)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        shutil.rmtree(tmp)
        sd.SpatialData(shapes=shapes, tables={"domains": out_table}).write(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
