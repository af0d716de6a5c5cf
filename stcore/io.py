"""Reading slides (``.h5ad`` or a Space Ranger folder) and writing outputs atomically.

Every reader returns AnnData with counts in ``X`` (scipy CSR), coordinates in
``obsm['spatial']`` (n_spots x 2, float) and unique spot ids.  Whatever is wrong with the
input is raised as :class:`stcore.errors.InputError` naming the file and the fix.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import tempfile
from enum import Enum
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import InputError

__all__ = ["SlideFormat", "read_slide", "read_h5ad", "read_visium", "write_h5ad", "atomic_path",
           "check_counts"]

log = logging.getLogger(__name__)

SPATIAL_KEY = "spatial"


class SlideFormat(str, Enum):
    """Input formats understood by :func:`read_slide`."""

    H5AD = "h5ad"
    VISIUM = "visium"


def read_slide(path: str | os.PathLike, fmt: str | SlideFormat) -> ad.AnnData:
    """Read one slide in format ``fmt`` and check coordinates and spot ids."""
    try:
        fmt = SlideFormat(fmt)
    except ValueError:
        raise InputError(f"unknown format '{fmt}'", path=str(path),
                         fix=f"use one of {[f.value for f in SlideFormat]}") from None
    adata = read_h5ad(path) if fmt is SlideFormat.H5AD else read_visium(path)
    _check_slide(adata, str(path))
    return adata


def read_h5ad(path: str | os.PathLike) -> ad.AnnData:
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=str(path), fix="check the path in the sample sheet")
    try:
        adata = ad.read_h5ad(path)
    except Exception as exc:  # h5py raises OSError, anndata raises its own types
        raise InputError(f"not a readable .h5ad ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                         path=str(path), fix="re-export the slide with anndata's write_h5ad") from None
    adata.X = _as_csr(adata.X)
    return adata


def read_visium(folder: str | os.PathLike) -> ad.AnnData:
    """Read a Space Ranger output folder, keeping the spots under tissue.

    Needs ``filtered_feature_bc_matrix.h5`` and ``spatial/`` with ``tissue_positions.csv``
    (Space Ranger >= 2.0, with header) or ``tissue_positions_list.csv`` (older, no header).
    """
    import scanpy as sc

    folder = Path(folder)
    h5 = folder / "filtered_feature_bc_matrix.h5"
    if not h5.is_file():
        raise InputError("Space Ranger matrix 'filtered_feature_bc_matrix.h5' not found", path=str(folder),
                         fix="point the sample sheet at the Space Ranger 'outs' folder")
    try:
        adata = sc.read_10x_h5(h5)
    except Exception as exc:
        raise InputError(f"cannot read the 10x matrix ({type(exc).__name__})", path=str(h5),
                         fix="re-run Space Ranger or re-download the file") from None
    adata.var_names_make_unique()
    spatial = folder / "spatial"
    new, old = spatial / "tissue_positions.csv", spatial / "tissue_positions_list.csv"
    cols = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]
    if new.is_file():
        pos_file, pos = new, pd.read_csv(new)
    elif old.is_file():
        pos_file, pos = old, pd.read_csv(old, header=None, names=cols)
    else:
        raise InputError("no spot positions: neither spatial/tissue_positions.csv nor "
                         "spatial/tissue_positions_list.csv exists", path=str(folder),
                         fix="copy Space Ranger's spatial/ folder next to filtered_feature_bc_matrix.h5")
    if list(pos.columns) != cols:
        raise InputError(f"unexpected columns {list(pos.columns)}", path=str(pos_file),
                         fix=f"the positions file must have the columns {cols}")
    pos = pos.set_index("barcode")
    missing = adata.obs_names.difference(pos.index)
    if len(missing):
        raise InputError(f"{len(missing)} barcodes of the matrix are not in the positions file "
                         f"(first: {missing[0]})", path=str(pos_file),
                         fix="use the positions file of the same Space Ranger run")
    pos = pos.loc[adata.obs_names]
    adata.obs[["in_tissue", "array_row", "array_col"]] = pos[["in_tissue", "array_row", "array_col"]].values
    adata.obsm[SPATIAL_KEY] = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(float)
    adata = adata[adata.obs["in_tissue"].astype(int) == 1].copy()
    scale = spatial / "scalefactors_json.json"
    if scale.is_file():
        adata.uns["spatial"] = {"scalefactors": json.loads(scale.read_text())}
    adata.X = _as_csr(adata.X)
    return adata


def _as_csr(x) -> sp.csr_matrix:
    if sp.issparse(x):
        return sp.csr_matrix(x)
    return sp.csr_matrix(np.asarray(x))


def _check_slide(adata: ad.AnnData, path: str) -> None:
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"empty matrix ({adata.n_obs} spots x {adata.n_vars} genes)", path=path,
                         fix="check that the file holds the expression matrix")
    if SPATIAL_KEY not in adata.obsm:
        raise InputError(f"no spot coordinates (obsm['{SPATIAL_KEY}'] is missing)", path=path,
                         fix=f"store the x, y coordinates as an n_spots x 2 array in obsm['{SPATIAL_KEY}']")
    try:
        xy = np.asarray(adata.obsm[SPATIAL_KEY], dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"obsm['{SPATIAL_KEY}'] is not numeric", path=path,
                         fix="store the x, y coordinates as numbers") from None
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise InputError(f"obsm['{SPATIAL_KEY}'] has shape {xy.shape}, expected n_spots x 2", path=path,
                         fix="store one (x, y) row per spot")
    xy = xy[:, :2]
    if not np.isfinite(xy).all():
        bad = int((~np.isfinite(xy)).any(axis=1).sum())
        raise InputError(f"{bad} spots have NaN or infinite coordinates", path=path,
                         fix="drop those spots or fill in their coordinates")
    if adata.n_obs > 1 and np.ptp(xy, axis=0).max() == 0:
        raise InputError("all spots sit at one point", path=path,
                         fix="check that obsm['spatial'] holds the real coordinates")
    adata.obsm[SPATIAL_KEY] = xy
    dup = adata.obs_names[adata.obs_names.duplicated()]
    if len(dup):
        raise InputError(f"{len(dup)} duplicate spot ids (first: '{dup[0]}')", path=path,
                         fix="make spot ids unique, e.g. with AnnData.obs_names_make_unique()")
    if adata.var_names.duplicated().any():
        n = int(adata.var_names.duplicated().sum())
        log.warning("%s: %d duplicate gene names made unique by suffixing", path, n)
        adata.var_names_make_unique()


def check_counts(x: sp.csr_matrix, path: str, *, integer: bool = True) -> None:
    """Raise if ``x`` has NaN, infinite or negative values, or (``integer``) non-integer ones."""
    data = x.data
    if not np.isfinite(data).all():
        raise InputError("the count matrix holds NaN or infinite values", path=path,
                         fix="store raw counts in X")
    if (data < 0).any():
        raise InputError("the count matrix holds negative values; raw counts are needed", path=path,
                         fix="store raw (non-negative integer) counts in X, not scaled values")
    if integer and not np.array_equal(data, np.round(data)):
        raise InputError("the count matrix holds non-integer values; raw counts are needed", path=path,
                         fix="store raw integer counts in X, or set hvg.flavor to 'seurat' for normalised input")


def atomic_path(path: str | os.PathLike):
    """Context manager giving a temporary path beside ``path``, renamed onto it on success."""
    return _Atomic(Path(path))


class _Atomic:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Temporary files of this output left by an earlier, killed write.  One job writes
        # an output at a time, so none of them belongs to a write in progress.
        for stale in self.path.parent.glob(f".{glob.escape(self.path.name)}.*.part{glob.escape(self.path.suffix)}"):
            stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part" + self.path.suffix,
                                   dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write ``adata`` so that ``path`` either holds the whole file or does not exist."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
