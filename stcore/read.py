"""Readers for a notebook: a slide folder or store as AnnData, read by the workflow's own readers
(the sample sheet's formats), so a slide reads the same here and in the DAG.

Raw counts in ``X`` (CSR), coordinates in ``obsm['spatial']``; for Visium and Visium HD the tissue
images, scale factors and metadata in ``uns['spatial'][library_id]`` as scanpy stores them (the
library id the matrix file names, its chemistry and software version); for Xenium the cell table's
columns (cell area, transcript counts, ...) in ``obs``; for Stereo-seq the bin size and the GEM's
header in ``uns['stereo']``.  Bad input raises
:class:`stcore.InputError` naming the file and the fix.

>>> import stcore
>>> adata = stcore.read.visium("sample/outs")
>>> stcore.gr.spatial_graph(adata); stcore.tl.domains(adata, n_clusters=7)
"""
from __future__ import annotations

import os

import anndata as ad

from . import io

__all__ = ["visium", "visium_hd", "xenium", "stereo", "spatialdata"]


def visium(folder: str | os.PathLike) -> ad.AnnData:
    """Read a Space Ranger ``outs`` folder (Visium, 55 um spots), keeping the spots under tissue.

    Parameters
    ----------
    folder
        The folder holding ``filtered_feature_bc_matrix.h5`` and ``spatial/`` (tissue positions,
        scale factors, tissue images).

    Returns
    -------
    AnnData with raw counts in ``X``, ``obs`` ``in_tissue`` / ``array_row`` / ``array_col``,
    full-resolution pixel coordinates in ``obsm['spatial']`` and ``uns['spatial'][library_id]``
    (``images``, ``scalefactors``, ``metadata``: ``chemistry_description``, ``software_version``
    where the matrix file records them), as :func:`scanpy.read_visium` stores them.
    """
    return io.read_visium(folder)


def visium_hd(folder: str | os.PathLike) -> ad.AnnData:
    """Read one bin size of a Visium HD run (``outs/binned_outputs/square_008um`` or another
    ``square_*um`` folder; its ``outs`` folder is refused naming the bin folders).

    Parameters
    ----------
    folder
        The bin folder, holding ``filtered_feature_bc_matrix.h5`` and
        ``spatial/tissue_positions.parquet`` (parquet needs ``pip install -e '.[readers]'``).

    Returns
    -------
    AnnData as :func:`visium` returns it, one observation per bin under tissue.
    """
    return io.read_visium(folder, hd=True)


def xenium(folder: str | os.PathLike) -> ad.AnnData:
    """Read a Xenium output bundle.

    Parameters
    ----------
    folder
        The folder holding ``cell_feature_matrix.h5`` and ``cells.parquet`` (or ``cells.csv.gz``).

    Returns
    -------
    AnnData with the gene-expression counts in ``X`` (control probes and codewords dropped), the
    cell centroids in microns in ``obsm['spatial']`` and every other column of the cell table
    (``transcript_counts``, ``cell_area``, ``nucleus_area``, ...) in ``obs``.
    """
    return io.read_xenium(folder)


def stereo(path: str | os.PathLike, bin_size: int | None = None) -> ad.AnnData:
    """Read a Stereo-seq GEM file (BGI/STOmics SAW: ``<chip>.gem.gz`` or ``<chip>.tissue.gem.gz``, gzipped
    or not), in chunks into a sparse matrix.

    Parameters
    ----------
    path
        The GEM: tab-separated, ``#`` header lines, columns ``geneID`` (and ``geneName``), ``x``, ``y``,
        ``MIDCount`` (older: ``MIDCounts``, ``UMICount``); a cell-bin GEM also ``CellID``.
    bin_size
        The side of the square bins the DNBs are summed into, in DNBs (500 nm apart); None: 50 (25 um,
        ``stcore.io.STEREO_BIN``); 1: each DNB.  A cell-bin GEM is read by cell and does not use it.

    Returns
    -------
    AnnData with one observation per bin (named ``'<x bin>_<y bin>'``) or cell (named by its CellID;
    CellID 0 left out), the summed counts in ``X``, the bin's centre (a cell's mean x, y) in DNB units
    in ``obsm['spatial']``, genes named by ``geneName`` where the file has it (``var['gene_ids']``:
    ``geneID``), and ``uns['stereo']`` (the bin size, the unit, the GEM's header lines).
    """
    return io.read_stereo(path, bin_size)


def spatialdata(store: str | os.PathLike) -> ad.AnnData:
    """Read the table of a SpatialData ``.zarr`` store (``pip install -e '.[spatialdata]'``).

    Parameters
    ----------
    store
        The store; its one table (or the one named 'table') holds the counts.

    Returns
    -------
    AnnData with the table's counts in ``X`` and its coordinates in ``obsm['spatial']`` (the
    table's own, else the centroids of the shapes it annotates, matched by instance id).
    """
    return io.read_spatialdata(store)
