"""Reading slides and writing outputs atomically.

Formats (the sample sheet's ``format``): ``h5ad``; ``visium`` (a Space Ranger ``outs`` folder);
``visium_hd`` (a Visium HD bin folder, ``outs/binned_outputs/square_008um`` or ``square_016um``:
the same layout with ``spatial/tissue_positions.parquet``); ``xenium`` (a Xenium output folder:
``cell_feature_matrix.h5`` and ``cells.parquet`` or ``cells.csv.gz``); ``stereo`` (a Stereo-seq GEM
file of BGI/STOmics' SAW pipeline, ``<chip>.gem.gz`` or ``.tissue.gem.gz``, summed into square bins
of ``bin_size`` x ``bin_size`` DNBs, or by cell where it has a ``CellID`` column); ``spatialdata`` (a
SpatialData ``.zarr`` store, e.g. written by spatialdata-io from CosMx, MERSCOPE, Xenium or
Visium HD: its table, with coordinates from ``obsm['spatial']`` or the centroids of the shapes
it annotates).  Parquet files need pyarrow, from the ``readers`` extra (``pip install -e
'.[readers]'``); SpatialData stores need the ``spatialdata`` extra.

Every reader returns AnnData with counts in ``X`` (scipy CSR), coordinates in
``obsm['spatial']`` (n_spots x 2, float) and unique spot ids.  Whatever is wrong with the
input is raised as :class:`stcore.errors.InputError` naming the file and the fix.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import re
import tempfile
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import InputError
from .formats import FORMATS, STEREO_BIN
from .validate import check_counts, check_slide  # noqa: F401  (check_counts: stcore.io's name for it)

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["SlideFormat", "read_slide", "read_h5ad", "read_visium", "read_xenium", "read_stereo", "write_h5ad",
           "atomic_path",
           "check_counts", "read_tsv", "as_csr", "READERS_INSTALL"]

log = logging.getLogger(__name__)

SPATIAL_KEY = "spatial"
READERS_INSTALL = "pip install -e '.[readers]'"
SPATIALDATA_INSTALL = "pip install -e '.[spatialdata]'"
# The largest tissue image kept in uns['spatial'] (pixels): a Visium HD hires image (up to 6000 x
# 6000) would add ~100 MB to every output; its lowres image is kept.
MAX_IMAGE_PIXELS = 4_000_000


# Input formats understood by :func:`read_slide`: those of stcore.formats (the sample sheet's
# schema lists the same, tests/test_bad_input.py checks it).
SlideFormat = Enum("SlideFormat", {fmt.upper(): fmt for fmt in FORMATS}, type=str)




def read_slide(path: str | os.PathLike, fmt: str | SlideFormat, *, bin_size: int | str | None = None) -> ad.AnnData:
    """Read one slide in format ``fmt`` and check coordinates and spot ids.  ``bin_size``: the sheet's
    ``bin_size`` of a ``stereo`` slide (DNBs a side of its square bins; None or empty: :data:`STEREO_BIN`)."""
    try:
        fmt = SlideFormat(fmt)
    except ValueError:
        raise InputError(f"unknown format '{fmt}'", path=str(path),
                         fix=f"use one of {[f.value for f in SlideFormat]}") from None
    if fmt is SlideFormat.H5AD:
        adata = read_h5ad(path)
    elif fmt is SlideFormat.XENIUM:
        adata = read_xenium(path)
    elif fmt is SlideFormat.STEREO:
        adata = read_stereo(path, bin_size)
    elif fmt is SlideFormat.SPATIALDATA:
        adata = read_spatialdata(path)
    else:
        adata = read_visium(path, hd=fmt is SlideFormat.VISIUM_HD)
    # a Visium folder's images were checked by its reader (_images_out_of_register), by the same rule
    _check_slide(adata, str(path), images=fmt not in (SlideFormat.VISIUM, SlideFormat.VISIUM_HD))
    return adata


def _refuse_windows_path(folder, fmt: str) -> None:
    """A folder path written with Windows' '\\', as a file URL or inside quotes, that is not there: named
    as such (stcore.formats.miswritten, missing_slide)."""
    from .formats import missing_slide, miswritten

    if miswritten(str(folder)) and not os.path.exists(folder):
        problem, fix = missing_slide(str(folder), fmt)
        raise InputError(problem, path=str(folder), fix=fix)


def _refuse_not_a_folder(folder, fmt: str) -> None:
    """A folder format's path that is a file (the folder's matrix itself, an .h5ad) or a link to
    nothing: named as such (stcore.formats.missing_slide)."""
    from .formats import missing_slide

    if os.path.lexists(folder) and not os.path.isdir(folder):
        problem, fix = missing_slide(str(folder), fmt)
        raise InputError(problem, path=str(folder), fix=fix)


def _refuse_lfs_pointer(path) -> None:
    """A file that is a Git LFS pointer, not its content (stcore.formats.lfs_pointer): named as such."""
    from .formats import lfs_pointer

    found = lfs_pointer(str(path))
    if found:
        raise InputError(found[0], path=str(path), fix=found[1])


def _refuse_misnamed_matrix(folder, fmt: str) -> None:
    """The folder's matrix under a download's name (stcore.formats.misnamed_matrix): named as such, with the command."""
    from .formats import misnamed_matrix

    found = misnamed_matrix(str(folder), fmt)
    if found:
        raise InputError(found[0], path=str(folder), fix=found[1])


def read_h5ad(path: str | os.PathLike) -> ad.AnnData:
    from .formats import missing_slide

    path = Path(path)
    missing = missing_slide(str(path), "h5ad")
    if missing:
        raise InputError(missing[0], path=str(path), fix=missing[1])
    try:
        import anndata as ad

        adata = ad.read_h5ad(path)
    except Exception as exc:  # h5py raises OSError, anndata raises its own types
        _refuse_lfs_pointer(path)
        _refuse_10x_matrix(path)
        _refuse_other_tools_file(path)
        raise InputError(f"not a readable .h5ad ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                         path=str(path), fix="re-export the slide with anndata's write_h5ad") from None
    if adata.X is None:
        _refuse_other_tools_file(path)      # a MuData file reads as an AnnData without X
        layers = list(adata.layers.keys())
        raise InputError(f"no expression matrix: X is missing ({adata.n_obs} spots x {adata.n_vars} genes, "
                         f"layers: {layers or 'none'})", path=str(path),
                         fix="store the raw counts in X before writing the file (e.g. adata.X = "
                             f"adata.layers['{layers[0] if layers else 'counts'}'])")
    try:
        adata.X = as_csr(adata.X, spots=adata.obs_names, genes=adata.var_names)
    except InputError as exc:          # an X of text (anndata writes an array of strings)
        raise exc.located(path=str(path)) from None
    return adata


def _refuse_10x_matrix(path: Path) -> None:
    """A 10x HDF5 matrix given as an .h5ad (Space Ranger's ``filtered_feature_bc_matrix.h5``,
    Xenium's ``cell_feature_matrix.h5``: a ``matrix`` group of barcodes, features and the CSC
    arrays, and no coordinates) is named with the format that reads it and its folder."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            matrix = f.get("matrix")
            is_10x = isinstance(matrix, h5py.Group) and {"barcodes", "indptr"} <= set(matrix.keys())
    except Exception:
        return
    if not is_10x:
        return
    xenium = path.name.startswith("cell_feature_matrix")
    what = "Xenium's cell_feature_matrix.h5" if xenium else "Space Ranger's filtered_feature_bc_matrix.h5"
    raise InputError(f"a 10x matrix (the HDF5 'matrix' group of {what}), not an .h5ad: it holds the counts without "
                     "the spots' positions", path=str(path),
                     fix=(f"set the sample sheet's format to xenium and its path to the Xenium output folder "
                          f"({path.parent}, which holds it and cells.parquet or cells.csv.gz)" if xenium else
                          f"set the sample sheet's format to visium and its path to the Space Ranger outs folder "
                          f"({path.parent}, which holds spatial/; a Visium HD bin folder: format visium_hd)"))


def _refuse_other_tools_file(path: Path) -> None:
    """Another tool's file given as an .h5ad: a Seurat object (R's .rds / .RData, SeuratDisk's .h5Seurat),
    a loom file, a MuData .h5mu; named with the conversion that gives an .h5ad."""
    import gzip

    import h5py

    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:2] == b"\x1f\x8b":                  # gzipped: what it holds
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(8)
        except (OSError, EOFError):
            return
        if head == b"\x89HDF\r\n\x1a\n":          # an .h5ad.gz, as GEO gives them
            plain = path.with_name(path.name[:-3] if path.name.endswith(".gz") else f"{path.stem}_unpacked.h5ad")
            raise InputError("a gzipped file (an .h5ad.gz, as GEO gives them?), not an .h5ad", path=str(path),
                             fix=f"unpack it and give the file it writes: gunzip -c '{path}' > '{plain}'")
    if _looks_like_gem(path):
        raise InputError("a Stereo-seq GEM (SAW's gene-by-DNB text file), not an .h5ad", path=str(path),
                         fix="set the sample sheet's format to stereo (its bins: the bin_size column, 50 DNBs where "
                             "empty)")
    target = path.with_suffix(".h5ad") if path.suffix != ".h5ad" else path.with_name(f"{path.stem}_converted.h5ad")
    found = None
    if head[:2] in (b"X\n", b"A\n", b"B\n") or head[:5] in (b"RDX3\n", b"RDX2\n"):
        found = ("an R data file (saveRDS or save: a Seurat object?), not an .h5ad",
                 "convert it in R with the counts as X: sceasy::convertFormat(obj, from = 'seurat', to = 'anndata', "
                 "assay = 'Spatial', main_layer = 'counts', outFile = 'slide.h5ad') (SeuratDisk's Convert puts the "
                 "log-normalised data in X and the counts in .raw, or drops them after ScaleData)")
    else:
        try:
            with h5py.File(path, "r") as f:
                keys = set(f.keys())
        except Exception:
            return
        if {"assays", "meta.data"} <= keys:
            found = ("a Seurat object in SeuratDisk's .h5Seurat format, not an .h5ad",
                     f"convert it in R: SeuratDisk::Convert('{path}', dest = 'h5ad'), and give the .h5ad it writes")
        elif {"matrix", "row_attrs", "col_attrs"} <= keys:
            found = ("a loom file, not an .h5ad",
                     f"convert it: anndata.read_loom('{path}').write_h5ad('{target}') (the spots' "
                     "coordinates then go to obsm['spatial'])")
        elif "mod" in keys:
            found = ("a MuData .h5mu file (several modalities), not an .h5ad",
                     f"write its RNA modality as an .h5ad: mudata.read_h5mu('{path}')['rna'].write_h5ad('{target}')")
    if found:
        raise InputError(found[0], path=str(path), fix=found[1])


def read_h5ad_elems(path: str | os.PathLike, *keys: str) -> dict:
    """Only the named elements of a pipeline-written .h5ad (e.g. ``X``, ``obsm/spatial``,
    ``layers/counts``), each read as AnnData reads it; a key the file lacks is left out.  A
    step that needs a few matrices of a large slide then holds those, not the whole AnnData.

    Numeric and string arrays and scalars, CSR/CSC matrices, categoricals, data frames of such
    columns (``obs``) and mappings of such elements (``uns/...``) are read with h5py alone, as anndata's ``read_elem`` reads them (importing anndata
    is about 1 s of a job); other encodings through anndata."""
    import h5py

    with h5py.File(path, "r") as f:
        return {key: _read_elem(f[key]) for key in keys if key in f}


def _read_elem(elem):
    """One element of an .h5ad as anndata's ``read_elem`` returns it (see :func:`read_h5ad_elems`)."""
    encoding = elem.attrs.get("encoding-type", "")
    value = None
    if encoding == "array" and elem.dtype.kind in "biuf":
        value = elem[()]
    elif encoding == "string-array":
        value = np.array(elem.asstr()[()], dtype=object)
    elif encoding == "string":
        value = elem.asstr()[()]
    elif encoding == "numeric-scalar" and elem.dtype.kind in "biuf":
        value = elem[()]
    elif encoding == "dict":
        value = {key: _read_elem(elem[key]) for key in elem}
    elif encoding in ("csr_matrix", "csc_matrix"):
        kind = sp.csr_matrix if encoding == "csr_matrix" else sp.csc_matrix
        shape = tuple(int(s) for s in elem.attrs["shape"])
        value = kind((elem["data"][()], elem["indices"][()], elem["indptr"][()]), shape=shape)
    elif encoding == "categorical":
        value = pd.Categorical.from_codes(elem["codes"][()], categories=_read_elem(elem["categories"]),
                                          ordered=bool(elem.attrs["ordered"]))
    elif encoding == "dataframe":
        index_key = elem.attrs["_index"]
        columns = [str(c) for c in elem.attrs["column-order"]]
        parts = {key: _read_elem(elem[key]) for key in [index_key, *columns]}
        if all(np.ndim(part) == 1 for part in parts.values()):       # else anndata's frame
            index = pd.Index(parts.pop(index_key), name=None if index_key == "_index" else index_key)
            value = pd.DataFrame(parts, index=index, columns=columns or None)
    if value is not None:
        return value
    from anndata.io import read_elem

    return read_elem(elem)


def _read_10x_h5(h5: Path, what: str, fix: str) -> ad.AnnData:
    """A 10x HDF5 matrix (Space Ranger, Xenium), gene-expression features only."""
    import scanpy as sc

    try:
        adata = sc.read_10x_h5(h5)
    except Exception as exc:
        _refuse_lfs_pointer(h5)
        raise InputError(f"cannot read the {what} ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})",
                         path=str(h5), fix=fix) from None
    adata.var_names_make_unique()
    return adata


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError("reading a .parquet file needs pyarrow, which is not installed", path=str(path),
                         fix=READERS_INSTALL) from None
    try:
        return pd.read_parquet(path)
    except Exception as exc:
        _refuse_lfs_pointer(path)
        raise InputError(f"not a readable parquet file ({type(exc).__name__})", path=str(path),
                         fix="re-export the file, or re-run the instrument's pipeline") from None


def read_visium(folder: str | os.PathLike, *, hd: bool = False) -> ad.AnnData:
    """Read a Space Ranger output folder: the spots of its filtered matrix (those under tissue;
    a positions file that puts any of them outside the tissue is of another run: refused).

    Needs ``filtered_feature_bc_matrix.h5`` and ``spatial/`` with ``tissue_positions.parquet``
    (Visium HD bins), ``tissue_positions.csv`` (Space Ranger >= 2.0, with header) or
    ``tissue_positions_list.csv`` (older, no header).  ``hd``: a Visium HD bin folder
    (``binned_outputs/square_008um``); its ``outs`` folder is refused with the fix.  The tissue
    images and scale factors go to ``uns['spatial'][library_id]`` as scanpy's reader puts them.
    """
    folder = Path(folder)
    h5 = folder / "filtered_feature_bc_matrix.h5"
    if not h5.is_file():
        _refuse_windows_path(folder, "visium")
        _refuse_not_a_folder(folder, "visium_hd" if hd else "visium")
        _refuse_misnamed_matrix(folder, "visium_hd" if hd else "visium")
        raise InputError("Space Ranger matrix 'filtered_feature_bc_matrix.h5' not found", path=str(folder),
                         fix="point the sample sheet at the Space Ranger 'outs' folder"
                             + (" (Visium HD: outs/binned_outputs/square_008um)" if hd else ""))
    adata = _read_10x_h5(h5, "10x matrix", "re-run Space Ranger or re-download the file")
    spatial = folder / "spatial"
    parquet, new, old = (spatial / "tissue_positions.parquet", spatial / "tissue_positions.csv",
                         spatial / "tissue_positions_list.csv")
    cols = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]
    if parquet.is_file():
        pos_file, pos = parquet, _read_parquet(parquet)
    elif new.is_file() or old.is_file():
        pos_file = new if new.is_file() else old
        pos = _positions_csv(pos_file, cols)
    else:
        from .formats import dangling_link

        for link in (spatial, parquet, new, old):
            if dangling_link(link):
                problem, fix = dangling_link(link)
                raise InputError(f"no spot positions: {link.relative_to(folder)} {problem}", path=str(folder),
                                 fix=fix)
        found = _positions_elsewhere(folder)
        packed = found and found[0].endswith((".tar.gz", ".tgz", ".tar", ".zip"))
        held = (f"; the folder holds '{found[0]}', " + ("the spatial/ folder packed" if packed else
                                                        "the positions under another name or place") if found else "")
        raise InputError("no spot positions: none of spatial/tissue_positions.parquet, spatial/tissue_positions.csv "
                         f"or spatial/tissue_positions_list.csv exists{held}", path=str(folder),
                         fix=found[1] if found else
                         "copy Space Ranger's spatial/ folder next to filtered_feature_bc_matrix.h5")
    if list(pos.columns) != cols:
        raise InputError(f"unexpected columns {list(pos.columns)}", path=str(pos_file),
                         fix=f"the positions file must have the columns {cols}")
    pos = pos.set_index(pos["barcode"].astype(str))
    _refuse_duplicate_ids(pos.index, "barcodes", pos_file, "use the positions file Space Ranger wrote (one row per barcode)")
    missing = adata.obs_names.difference(pos.index)
    if len(missing):
        written = _barcodes_written_otherwise(missing, pos.index)
        raise InputError(f"{len(missing)} barcodes of the matrix are not in the positions file "
                         f"(first: {missing[0]})" + (f"; it writes them otherwise: {written}" if written else ""),
                         path=str(pos_file),
                         fix=("write the positions file's barcodes as the matrix writes them, or use the positions "
                              "file Space Ranger wrote beside this matrix" if written else
                              "use the positions file of the same Space Ranger run"))
    under = int((pd.to_numeric(pos["in_tissue"], errors="coerce") == 1).sum())
    pos = pos.loc[adata.obs_names]
    outside = int((pd.to_numeric(pos["in_tissue"], errors="coerce") != 1).sum())
    if outside:     # the filtered matrix holds the spots under tissue: another run's positions file, or a raw matrix
        raw = 0 < under < adata.n_obs
        raise InputError(f"{outside} of the {adata.n_obs} spots of filtered_feature_bc_matrix.h5 are not under tissue "
                         f"in {pos_file.name} (Space Ranger's filtered matrix holds only spots under tissue); "
                         + (f"the matrix holds more spots than the {under} the file puts under tissue: it is the raw "
                            "matrix (raw_feature_bc_matrix.h5, every spot) under the filtered one's name, or the "
                            "positions are of another run" if raw else
                            "the positions are of another run (every Visium slide has the same barcodes)"),
                         path=str(pos_file),
                         fix="use the spatial/ folder Space Ranger wrote beside this matrix"
                             + (", and its filtered_feature_bc_matrix.h5 (not raw_feature_bc_matrix.h5)"
                                if raw else ""))
    adata.obs[["in_tissue", "array_row", "array_col"]] = pos[["in_tissue", "array_row", "array_col"]].values
    adata.obsm[SPATIAL_KEY] = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(float)
    attrs = _h5_attrs(h5)
    library = attrs.get("library_ids") or _library_id(folder)
    metadata = {key: attrs[key] for key in ("chemistry_description", "software_version") if key in attrs}
    entry = {"images": _images(spatial), "metadata": {"source": "visium_hd" if hd else "visium", **metadata}}
    scale = spatial / "scalefactors_json.json"
    if scale.is_file():
        entry["scalefactors"] = json.loads(scale.read_text())
        if entry["images"] and _images_out_of_register(adata.obsm[SPATIAL_KEY], entry, scale):
            entry["images"] = {}
    adata.uns["spatial"] = {library: entry}
    adata.X = as_csr(adata.X)
    return adata


def _barcodes_written_otherwise(missing: pd.Index, written: pd.Index) -> str | None:
    """The matrix's barcodes ``missing`` from a positions file that holds them written otherwise:
    without their '-1' suffix, or with a sample's name in front (as some downloads write them); what
    the difference is, with an example, or None."""
    sample = [str(b) for b in missing[:200]]
    bare = [re.sub(r"-\d+$", "", b) for b in sample]
    if all(b in written for b in bare) and bare != sample:
        return f"without the suffix '{sample[0][len(bare[0]):]}' ('{bare[0]}' for '{sample[0]}')"
    ends = {}
    for p in map(str, written):
        m = re.match(r"^(.+?)([-_:.])([ACGTN]{10,}.*)$", p)
        if m:
            ends[m.group(3)] = p
    if all(b in ends for b in sample):
        return f"with a name in front ('{ends[sample[0]]}' for '{sample[0]}')"
    return None


def _images_out_of_register(xy: np.ndarray, entry: dict, scale_file: Path) -> bool:
    """Whether the scale factors put the spots off their tissue image (:func:`stcore.validate.image_out_of_register`:
    beyond its edge, or at another scale than the spot diameter says; another run's scalefactors_json.json,
    from an image of another resolution).  A warning names it; the caller then keeps no image, and the
    figures are drawn without one rather than over a tissue the spots do not fit."""
    from .validate import image_out_of_register

    diameter = entry["scalefactors"].get("spot_diameter_fullres")
    for key, image in entry["images"].items():
        found = image_out_of_register(xy, key, image.shape, entry["scalefactors"].get(f"tissue_{key}_scalef"),
                                      float(diameter) if isinstance(diameter, (int, float)) else None)
        if found:
            log.warning("%s: %s: the scale factors are of another run or image; the tissue images are left out, and "
                        "the figures are drawn without them. Fix: use the scalefactors_json.json Space Ranger wrote "
                        "beside these tissue_positions", scale_file, found[0])
            return True
    return False


def _positions_elsewhere(folder: Path) -> tuple[str, str] | None:
    """A Space Ranger positions file the reader does not open: beside the matrix rather than in spatial/,
    with the sample's name in front (a GEO download: ``151673_tissue_positions_list.csv``), or gzipped; or
    the spatial/ folder packed (GEO's ``GSM..._spatial.tar.gz``).  Its path relative to ``folder`` and the
    command that puts it where the reader opens it."""
    for place in (folder / "spatial", folder):
        if not place.is_dir():
            continue
        for f in sorted(p for p in place.iterdir() if p.is_file()):
            name = f.name[:-3] if f.name.endswith(".gz") else f.name
            for canonical in ("tissue_positions.parquet", "tissue_positions.csv", "tissue_positions_list.csv"):
                if name.endswith(canonical):
                    target = folder / "spatial" / canonical
                    how = (f"gunzip -c '{f}' > '{target}'" if f.name.endswith(".gz") else f"cp '{f}' '{target}'")
                    return (str(f.relative_to(folder)),
                            f"put it where the reader opens it: mkdir -p '{folder / 'spatial'}' && {how}")
    for f in sorted(p for p in folder.iterdir() if p.is_file()):       # the spatial/ folder packed, as GEO gives it
        if f.name.endswith(("spatial.tar.gz", "spatial.tgz", "spatial.tar")):
            return (f.name, f"unpack it beside the matrix (it holds spatial/): tar -xf '{f}' -C '{folder}'")
        if f.name.endswith("spatial.zip"):
            return (f.name, f"unpack it beside the matrix (it holds spatial/): unzip '{f}' -d '{folder}'")
    return None


def _positions_csv(path: Path, cols: list[str]) -> pd.DataFrame:
    """Space Ranger's positions CSV: ``tissue_positions.csv`` has a header line,
    ``tissue_positions_list.csv`` (before Space Ranger 2.0) none; either name is read by what its
    first line holds (a data line's second cell, in_tissue, is 0 or 1; a renamed file is read as it
    is), with the separator that line uses (a spreadsheet may save it with ';' or tabs).""" 
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline()
    sep = max((",", ";", "\t"), key=first.count)
    cells = [c.strip().strip('"') for c in first.split(sep)]
    header = not (len(cells) > 1 and cells[1].isdigit())       # a data line: in_tissue is 0 or 1
    return pd.read_csv(path, sep=sep, header=0 if header else None, names=None if header else cols)


def _h5_attrs(h5: Path) -> dict:
    """What Space Ranger records on its matrix file, as text: the library id (the first of
    ``library_ids``, the key scanpy's reader uses for ``uns['spatial']``), the chemistry and the
    software version; empty where the file records none."""
    import h5py

    def text(value):
        if isinstance(value, np.ndarray):
            value = value.ravel()[0] if value.size else ""
        return value.decode() if isinstance(value, bytes) else str(value)

    with h5py.File(h5, "r") as f:
        return {key: text(f.attrs[key]) for key in ("library_ids", "chemistry_description", "software_version")
                if key in f.attrs and text(f.attrs[key])}


def _library_id(folder: Path) -> str:
    """The slide's name for uns['spatial'] where the matrix file names none: the folder above
    Space Ranger's outs/binned_outputs."""
    parts = list(folder.resolve().parts)
    while len(parts) > 1 and (parts[-1] in ("outs", "binned_outputs") or re.fullmatch(r"square_\d+um", parts[-1])):
        parts.pop()
    return parts[-1] if len(parts) > 1 else "slide"


def _images(spatial: Path) -> dict:
    """Space Ranger's hires and lowres tissue images (uint8), as scanpy stores them."""
    import matplotlib.image as mpimg

    out = {}
    for key in ("hires", "lowres"):
        f = spatial / f"tissue_{key}_image.png"
        if not f.is_file():
            continue
        img = mpimg.imread(f)
        if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:
            log.info("%s: %d x %d pixels, not kept in uns['spatial'] (over %d)", f, img.shape[0], img.shape[1],
                     MAX_IMAGE_PIXELS)
            continue
        if img.dtype != np.uint8:
            img = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
        out[key] = img
    return out


def read_xenium(folder: str | os.PathLike) -> ad.AnnData:
    """Read a Xenium output folder: ``cell_feature_matrix.h5`` (gene-expression features only;
    control probes and codewords are dropped) and the cell centroids of ``cells.parquet`` (or
    ``cells.csv.gz``), in microns, as ``obsm['spatial']``; the cell table's other columns (cell
    and nucleus area, transcript and control counts, ...) go to ``obs``.  A cells file whose
    ``transcript_counts`` disagree with the matrix for most cells is of another run: refused."""
    folder = Path(folder)
    h5 = folder / "cell_feature_matrix.h5"
    if not h5.is_file():
        _refuse_windows_path(folder, "xenium")
        _refuse_not_a_folder(folder, "xenium")
        _refuse_misnamed_matrix(folder, "xenium")
        raise InputError("Xenium matrix 'cell_feature_matrix.h5' not found", path=str(folder),
                         fix="point the sample sheet at the Xenium output folder (the one holding "
                             "cell_feature_matrix.h5 and cells.parquet)")
    adata = _read_10x_h5(h5, "Xenium matrix", "re-export the Xenium output bundle")
    parquet, csv = folder / "cells.parquet", folder / "cells.csv.gz"
    if parquet.is_file():
        cells_file, cells = parquet, _read_parquet(parquet)
    elif csv.is_file():
        cells_file, cells = csv, pd.read_csv(csv)
    else:
        raise InputError("no cell positions: neither cells.parquet nor cells.csv.gz exists", path=str(folder),
                         fix="copy the Xenium bundle's cells.parquet next to cell_feature_matrix.h5")
    need = ["cell_id", "x_centroid", "y_centroid"]
    if not set(need) <= set(cells.columns):
        raise InputError(f"columns {sorted(set(need) - set(cells.columns))} missing", path=str(cells_file),
                         fix=f"the cells file must have the columns {need}")
    ids = cells["cell_id"]
    ids = ids.map(lambda v: v.decode() if isinstance(v, bytes) else str(v))
    cells = cells.set_index(ids)
    _refuse_duplicate_ids(cells.index, "cell ids", cells_file, "use the cells file of the Xenium output bundle (one row per cell)")
    missing = adata.obs_names.difference(cells.index)
    if len(missing):
        raise InputError(f"{len(missing)} cells of the matrix are not in the cells file (first: {missing[0]})",
                         path=str(cells_file), fix="use the cells file of the same Xenium output bundle")
    cells = cells.loc[adata.obs_names]
    _refuse_cells_of_another_run(adata, cells, cells_file)
    adata.obsm[SPATIAL_KEY] = cells[["x_centroid", "y_centroid"]].to_numpy(float)
    for column in cells.columns.difference(need, sort=False):    # cell area, transcript counts, ...
        adata.obs[column] = cells[column].to_numpy()
    adata.X = as_csr(adata.X)
    return adata


# The cells file's counts of control probes and codewords (Xenium Onboard Analysis 1.x to 3.x):
# transcript_counts holds the gene transcripts alone, the matrix's controls are dropped on reading;
# a cell whose transcript_counts differs from its gene counts by no more than these agrees.
XENIUM_CONTROL_COUNTS = ("control_probe_counts", "control_codeword_counts", "unassigned_codeword_counts",
                         "deprecated_codeword_counts", "genomic_control_counts")


def _refuse_cells_of_another_run(adata: ad.AnnData, cells: pd.DataFrame, cells_file: Path) -> None:
    """The cells file's ``transcript_counts`` (each cell's gene transcripts, as Xenium writes it)
    agrees with the matrix's counts for at least half the cells; where it does not, the file is of
    another run (Xenium's cell ids, 'aaaaaaab-1', ..., repeat across runs, so every cell is found):
    refused.  A cell agrees when the two differ by no more than its control counts; files without
    ``transcript_counts`` are taken as they are."""
    if "transcript_counts" not in cells.columns:
        return
    told = pd.to_numeric(cells["transcript_counts"], errors="coerce").to_numpy(float)
    known = np.isfinite(told)
    if not known.any():
        return
    sums = np.asarray(adata.X.sum(axis=1), dtype=float).ravel()
    controls = np.zeros(len(told))
    for column in XENIUM_CONTROL_COUNTS:
        if column in cells.columns:
            controls += np.nan_to_num(pd.to_numeric(cells[column], errors="coerce").to_numpy(float))
    agree = np.abs(told - sums)[known] <= controls[known] + 0.5
    if agree.mean() >= 0.5:
        return
    first = int(np.flatnonzero(known)[np.argmin(agree)])
    raise InputError(f"transcript_counts disagrees with the counts of cell_feature_matrix.h5 for "
                     f"{int((~agree).sum())} of the {int(known.sum())} cells (first: '{adata.obs_names[first]}', "
                     f"{told[first]:g} in the file, {sums[first]:g} in the matrix): the cells file is of another run "
                     "(Xenium's cell ids repeat across runs, so every cell is found in it)", path=str(cells_file),
                     fix="use the cells file of the Xenium output bundle that holds this cell_feature_matrix.h5")


# Stereo-seq's GEM (BGI/STOmics SAW): tab-separated text, optionally gzipped, '#' header lines
# ('#FileFormat=GEMv0.1', '#BinSize=1', '#OffsetX=...'), then a line of column names and one line per gene
# at one DNB (DNA nanoball, 500 nm apart): geneID (and geneName in newer files), x, y, the count, and in a
# cell-bin GEM CellID (0: no cell).  The count column's names, newest first.
GEM_COUNTS = ("MIDCount", "MIDCounts", "UMICount")
# Lines of a GEM read at a time (a whole chip's GEM holds 10^8 to 10^9).
GEM_CHUNK = 2_000_000
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def stereo_bin_size(value, *, path: str | None = None, sample: str | None = None) -> int:
    """The bin size ``value`` (the sheet's ``bin_size``, or :func:`stcore.read.stereo`'s) as an int, or an
    :class:`InputError` where it is not a positive whole number."""
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"\+?\d+(\.0*)?", text) or int(float(text)) < 1:
        raise InputError(f"bin_size '{value}' is not a positive whole number (the DNBs a side of the square bins "
                         "a GEM is summed into)", sample=sample, path=path,
                         fix=f"set the sample sheet's bin_size to a whole number of DNBs: {STEREO_BIN} (25 um, the "
                             f"default where the cell is empty), 100, 20, or 1 (each DNB, 500 nm)")
    return int(float(text))


def _gem_open(path: Path):
    """The GEM as text, gzipped or not (what its first bytes say, not its name)."""
    import gzip

    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _gem_header(path: Path) -> tuple[dict, int, list[str]]:
    """The GEM's '#' header lines as {key: value}, how many there are, and its column names."""
    header, skipped = {}, 0
    try:
        with _gem_open(path) as fh:
            # a line read at most 1 MiB at a time: a binary file (an archive of SAW's output) may hold no line end
            for line in iter(lambda: fh.readline(1 << 20), ""):
                if not line.startswith("#"):
                    return header, skipped, [c.strip() for c in line.rstrip("\r\n").split("\t")]
                skipped += 1
                key, _, value = line[1:].strip().partition("=")
                if key:
                    header[key.strip()] = value.strip()
    except (OSError, EOFError) as exc:          # a gzip cut short or not gzip
        raise InputError(f"not a readable GEM ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})",
                         path=str(path), fix="download the GEM again (gzip -t checks a .gem.gz)") from None
    return header, skipped, []


def _looks_like_gem(path: Path) -> bool:
    """Whether the file (gzipped or not) starts as a GEM: a '#FileFormat=GEM' header line, or a first line
    other than '#' naming x, y and a GEM's count column (its first 64 KiB read, whatever the file is)."""
    import gzip

    try:
        with (gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")) as fh:
            head = fh.read(1 << 16).decode("utf-8", errors="replace")
    except (OSError, EOFError):
        return False
    lines = head.splitlines()
    if lines and lines[0].startswith("#FileFormat=GEM"):
        return True
    first = next((line for line in lines if not line.startswith("#")), "")
    columns = first.split("\t")
    return {"x", "y"} <= set(columns) and any(c in columns for c in GEM_COUNTS)


def _refuse_gef(path: Path) -> None:
    """A GEF (SAW's HDF5 matrix, ``.gef``, ``.tissue.gef``, ``.cellbin.gef``) given as a GEM: named with the
    commands that write its GEM or read it."""
    with open(path, "rb") as fh:
        if fh.read(8) != _HDF5_MAGIC:
            return
    stem = path.name.split(".")[0] or "chip"
    raise InputError("an HDF5 file (a Stereo-seq GEF, as SAW writes .gef, .tissue.gef and .cellbin.gef), not a GEM: "
                     "format stereo reads SAW's GEM text file (<chip>.gem.gz, <chip>.tissue.gem.gz)", path=str(path),
                     fix=f"give the GEM SAW wrote beside it, or write one with SAW's geftools: geftools view -i "
                         f"'{path}' -o '{path.with_name(stem + '.gem')}' -s {stem} (a .cellbin.gef: add -d with its "
                         "square-bin .gef); or read the GEF with stereopy or spatialdata-io, write an .h5ad with the "
                         "counts in X and the coordinates in obsm['spatial'], and give it with format h5ad")


def read_stereo(path: str | os.PathLike, bin_size: int | str | None = None, *,
                chunksize: int = GEM_CHUNK) -> ad.AnnData:
    """Read a Stereo-seq GEM file (SAW's ``<chip>.gem.gz`` or ``.tissue.gem.gz``, gzipped or not).

    Square bins (no ``CellID`` column): each spot is a bin of ``bin_size`` x ``bin_size`` DNBs (default
    :data:`STEREO_BIN`, 25 um; 1: each DNB), the DNBs ``x // bin_size``, ``y // bin_size`` alike; its counts
    the sum of theirs, its coordinates its centre in DNB units (500 nm; the mean of the DNB positions it
    covers, ``(x // bin_size) * bin_size + (bin_size - 1) / 2``), its name ``'<x bin>_<y bin>'``.  A cell-bin
    GEM (a ``CellID`` column): one spot per cell (CellID 0, no cell, is left out), named by its CellID, at the
    mean x, y of its lines; ``bin_size`` is not used.  Genes are named by ``geneName`` where the file has it
    (``var['gene_ids']``: ``geneID``), else by ``geneID``.  The count is ``MIDCount`` (older files:
    ``MIDCounts``, ``UMICount``); ``ExonCount`` is not read.  The file is read ``chunksize`` lines at a time
    into a sparse matrix.  The header lines go to ``uns['stereo']['header']``; its ``OffsetX`` and ``OffsetY`` (x +
    OffsetX: the DNB's position on the chip's mask) are not applied, as stereopy's ``read_gem`` leaves them, whose
    overlay of SAW's registered image takes x, y as written (docs/formats.md)."""
    from .formats import missing_slide

    path = Path(path)
    bin_given = bin_size not in (None, "")
    bin_size = STEREO_BIN if bin_size in (None, "") else stereo_bin_size(bin_size, path=str(path))
    missing = missing_slide(str(path), "stereo")
    if missing:
        raise InputError(missing[0], path=str(path), fix=missing[1])
    _refuse_lfs_pointer(path)
    _refuse_gef(path)
    header, skipped, columns = _gem_header(path)
    gene_col = "geneID" if "geneID" in columns else "geneName" if "geneName" in columns else None
    count_col = next((c for c in GEM_COUNTS if c in columns), None)
    lacking = [name for name, found in (("geneID", gene_col), ("x", "x" in columns), ("y", "y" in columns),
                                        ("MIDCount", count_col)) if not found]
    if lacking:
        tabs = len(columns) == 1 and ("," in columns[0] or " " in columns[0])
        shown = [c if len(c) <= 40 else c[:40] + "..." for c in columns[:8]]
        raise InputError(f"not a GEM: column{'s' if len(lacking) > 1 else ''} {lacking} missing (its columns: "
                         f"{shown}{' ...' if len(columns) > 8 else ''}"
                         + ("; the line is not tab-separated" if tabs else "") + ")", path=str(path),
                         fix="give the GEM SAW wrote (tab-separated, columns geneID, x, y, MIDCount; an older one's "
                             "MIDCounts or UMICount), gzipped or not")
    by_cell = "CellID" in columns
    if by_cell and bin_given:
        log.warning("%s: a cell-bin GEM (a CellID column) is read by cell; bin_size %d is not used", path, bin_size)
    named = gene_col == "geneID" and "geneName" in columns
    use = [gene_col, "x", "y", count_col] + (["geneName"] if named else []) + (["CellID"] if by_cell else [])
    dtype = {gene_col: "category", "x": "float64", "y": "float64", count_col: "float64"}
    dtype.update({"geneName": "category"} if named else {})
    dtype.update({"CellID": "category"} if by_cell else {})
    genes, gene_names, spots = {}, {}, {}        # name -> column; geneID -> geneName; CellID -> row (cells)
    cell_xy = np.zeros((0, 3))                    # per cell: sum x, sum y, lines
    parts, pending, kept = [], 0, 0
    first_line = skipped + 2                      # the file's line of the data row of index 0
    try:
        reader = pd.read_csv(path, sep="\t", skiprows=skipped, usecols=use, dtype=dtype, chunksize=chunksize,
                             compression="gzip" if _is_gzip(path) else None, na_values=[""],
                             keep_default_na=False)
        for chunk in reader:
            line_no = chunk.index.to_numpy() + first_line
            count = chunk[count_col].to_numpy()
            x, y = chunk["x"].to_numpy(), chunk["y"].to_numpy()
            gene = chunk[gene_col].cat
            _refuse_gem_values(path, count_col, count, x, y, gene.codes.to_numpy(), gene_col, line_no)
            code_of = np.array([genes.setdefault(str(g), len(genes)) for g in gene.categories], dtype=np.int64)
            g = code_of[gene.codes.to_numpy()] if len(code_of) else np.zeros(0, np.int64)
            if named:               # each geneID's geneName, from the chunk's distinct pairs of the two
                name = chunk["geneName"].cat
                pairs = np.unique(gene.codes.to_numpy().astype(np.int64) * (len(name.categories) + 1)
                                  + name.codes.to_numpy() + 1)
                for gid, nm in zip(pairs // (len(name.categories) + 1), pairs % (len(name.categories) + 1) - 1):
                    if nm >= 0:
                        gene_names.setdefault(str(gene.categories[gid]), str(name.categories[nm]))
            if by_cell:
                cell = chunk["CellID"].cat
                labels = [str(c) for c in cell.categories]
                row_of = np.array([-1 if c in ("0", "nan") else spots.setdefault(c, len(spots)) for c in labels],
                                  dtype=np.int64)
                codes = cell.codes.to_numpy()
                key = np.where(codes < 0, -1, row_of[codes] if len(row_of) else -1)
                inside = key >= 0
                key, g, count, x, y = key[inside], g[inside], count[inside], x[inside], y[inside]
                if len(spots) > len(cell_xy):
                    cell_xy = np.vstack([cell_xy, np.zeros((len(spots) - len(cell_xy), 3))])
                cell_xy[:, 0] += np.bincount(key, weights=x, minlength=len(cell_xy))
                cell_xy[:, 1] += np.bincount(key, weights=y, minlength=len(cell_xy))
                cell_xy[:, 2] += np.bincount(key, minlength=len(cell_xy))
            else:       # the bin of each line as one int64: x bin * 2^32 + y bin shifted to be >= 0
                key = ((np.floor(x / bin_size).astype(np.int64) << 32)
                       + (np.floor(y / bin_size).astype(np.int64) + 2**31))
            parts.append(_summed(key, g, count))
            pending += len(parts[-1][0])
            if pending > max(chunksize, 2 * kept):      # duplicates across chunks summed: memory stays the matrix's
                parts = [_summed(*map(np.concatenate, zip(*parts)))]
                kept = pending = len(parts[0][0])
    except InputError:
        raise
    except Exception as exc:        # a line of other fields, text in x, a gzip cut short
        raise InputError(f"not a readable GEM ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})",
                         path=str(path), fix="give the GEM SAW wrote (tab-separated text, gzipped or not), or "
                                             "download it again (gzip -t checks a .gem.gz)") from None
    key, g, count = _summed(*map(np.concatenate, zip(*parts))) if parts else (np.zeros(0, np.int64),) * 3
    import anndata as ad

    if by_cell:
        names = np.array(list(spots.keys()), dtype=object)      # in the order the cells first appear
        held = np.unique(key)                   # cells with a line (all, unless every line of one was dropped)
        index = np.full(len(spots), -1, np.int64)
        index[held] = np.arange(len(held))
        rows, obs_names = index[key], names[held]
        with np.errstate(invalid="ignore"):
            xy = cell_xy[held, :2] / cell_xy[held, 2:3]
    else:
        held, rows = np.unique(key, return_inverse=True)
        bx, by = held >> 32, (held & 0xFFFFFFFF) - 2**31
        obs_names = np.array([f"{a}_{b}" for a, b in zip(bx.tolist(), by.tolist())], dtype=object)
        xy = np.column_stack([bx * bin_size + (bin_size - 1) / 2, by * bin_size + (bin_size - 1) / 2]).astype(float)
    ids = np.array(list(genes.keys()), dtype=object)
    var = pd.DataFrame(index=pd.Index(ids, dtype=object))
    if named:
        var = pd.DataFrame({"gene_ids": ids}, index=pd.Index([gene_names.get(i, i) for i in ids], dtype=object))
    X = sp.csr_matrix((count.astype(np.float32), (rows, g)), shape=(len(obs_names), len(ids)))
    X.sum_duplicates()
    adata = ad.AnnData(X=X, obs=pd.DataFrame(index=pd.Index(obs_names, dtype=object)), var=var)
    adata.var_names_make_unique()
    adata.obsm[SPATIAL_KEY] = xy
    adata.uns["stereo"] = {"spots": "cells" if by_cell else f"bins of {bin_size} x {bin_size} DNBs",
                           "bin_size": 0 if by_cell else bin_size, "unit": "DNB (500 nm)",
                           "header": {k: str(v) for k, v in header.items()}}
    return adata


def _is_gzip(path: Path) -> bool:
    """Whether the file is gzipped (its first two bytes; a GEM's name may say either)."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _summed(key, gene, count):
    """(spot key, gene, count) triples with those of one spot and gene summed into one."""
    if not len(key):
        return key.astype(np.int64), gene.astype(np.int64), count.astype(np.float64)
    codes, uniques = pd.factorize(key)
    m = sp.coo_matrix((count.astype(np.float64), (codes, gene)),
                      shape=(len(uniques), int(gene.max()) + 1)).tocsr()
    m.sum_duplicates()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    return np.asarray(uniques, dtype=np.int64)[rows], m.indices.astype(np.int64), m.data


def _refuse_gem_values(path: Path, count_col: str, count, x, y, gene_codes, gene_col: str, lines) -> None:
    """Counts that are missing or negative, a missing x or y or gene: named with the first line."""
    for bad, what, fix in (
            (~(count >= 0), f"{count_col} holds a missing or negative count",
             f"give the GEM SAW wrote: {count_col} holds each gene's count at a DNB (a whole number, 1 or more)"),
            (~(np.isfinite(x) & np.isfinite(y)), "a line without its x or y",
             "give the GEM SAW wrote: every line holds the DNB's x and y"),
            (gene_codes < 0, f"a line without its {gene_col}",
             f"give the GEM SAW wrote: every line names its gene in {gene_col}")):
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            shown = count[first] if what.startswith(count_col) else None
            more = int(bad.sum()) - 1
            raise InputError(f"{what} at line {int(lines[first])}" + (f" ({count_col} {shown:g})" if shown is not None
                                                                      else "")
                             + (f", and {more} more line{'s' if more > 1 else ''} of its first {int(lines[-1])}"
                                if more else ""), path=str(path), fix=fix)


def read_spatialdata(store: str | os.PathLike) -> ad.AnnData:
    """Read a SpatialData ``.zarr`` store: its table (the one table, or the one named 'table'),
    counts in ``X``; coordinates from the table's ``obsm['spatial']``, else the centroids of the
    shapes element the table annotates, matched by its instance ids."""
    from .formats import is_anndata_zarr, missing_slide

    store = Path(store)
    if store.is_dir() and is_anndata_zarr(str(store)):
        problem, fix = missing_slide(str(store), "spatialdata")
        raise InputError(problem, path=str(store), fix=fix)
    try:
        import spatialdata as sd
    except ImportError:
        raise InputError("reading a SpatialData store needs spatialdata, which is not installed", path=str(store),
                         fix=SPATIALDATA_INSTALL) from None
    if not store.is_dir():
        raise InputError("SpatialData store not found", path=str(store),
                         fix="point the sample sheet at the .zarr folder written by SpatialData / spatialdata-io")
    try:
        sdata = sd.read_zarr(store)
    except Exception as exc:
        raise InputError(f"not a readable SpatialData store ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})",
                         path=str(store), fix="re-write it with SpatialData.write") from None
    table = sdata.tables[spatialdata_table(sdata, store)]
    import anndata as ad

    adata = ad.AnnData(X=as_csr(table.X, path=str(store)), obs=table.obs.copy(), var=table.var.copy(),
                       layers={name: as_csr(m, what=f"layers['{name}']", path=str(store))
                               for name, m in table.layers.items()})      # counts kept beside X
    if table.raw is not None:
        adata.raw = table.raw.to_adata()
    attrs = table.uns.get("spatialdata_attrs", {})
    if isinstance(attrs, dict) and attrs:
        # which elements the rows annotate: a table of several (slides joined by spatialdata.concatenate)
        # is judged by them as by a slide column (stcore.validate.check_one_slide)
        adata.uns["spatialdata_attrs"] = dict(attrs)
    from .validate import named_as_coordinates

    for key in table.obsm.keys():       # the table's other coordinates too (spatialdata-io's CosMx: the slide's
        if key != SPATIAL_KEY and named_as_coordinates(key):  # in 'global', each field of view's in 'spatial')
            adata.obsm[key] = table.obsm[key]
    if SPATIAL_KEY in table.obsm:
        # every column, checked as an .h5ad's are (read_slide): a third one may be each section's z
        adata.obsm[SPATIAL_KEY] = table.obsm[SPATIAL_KEY]
        return adata
    region, instance_key = attrs.get("region"), attrs.get("instance_key")
    regions = [region] if isinstance(region, str) else list(np.ravel(region)) if region is not None else []
    region_key = attrs.get("region_key")
    if (not regions or any(r not in sdata.shapes for r in regions) or instance_key not in table.obs
            or (len(regions) > 1 and region_key not in table.obs)):
        raise InputError("the table has no obsm['spatial'] and annotates no shapes element to take "
                         "coordinates from", path=str(store),
                         fix="store the coordinates in the table's obsm['spatial']")
    xy = np.full((table.n_obs, 2), np.nan)
    for name in regions:        # each row at the centroid of its element's shape (one element, or each row's)
        rows = (np.ones(table.n_obs, bool) if len(regions) == 1
                else (table.obs[region_key].astype(str) == str(name)).to_numpy())
        centroids = sdata.shapes[name].geometry.centroid
        at = pd.DataFrame({"x": centroids.x.to_numpy(), "y": centroids.y.to_numpy()}, index=sdata.shapes[name].index)
        ids = table.obs[instance_key].to_numpy()[rows]
        missing = pd.Index(ids).difference(at.index)
        if len(missing):
            raise InputError(f"{len(missing)} instances of the table are not in shapes '{name}' "
                             f"(first: {missing[0]})", path=str(store),
                             fix="write the table and its shapes from the same run")
        xy[rows] = at.loc[ids].to_numpy(float)
    adata.obsm[SPATIAL_KEY] = xy
    return adata


def spatialdata_table(sdata, store: str | os.PathLike) -> str:
    """The name of the slide's table in a SpatialData object: its one table, or the one named 'table'."""
    names = list(sdata.tables.keys())
    if not names:
        raise InputError("the store has no table (no expression matrix)", path=str(store),
                         fix="add the counts as a table (spatialdata.models.TableModel)")
    if len(names) > 1 and "table" not in names:
        bins = [n for n in names if re.fullmatch(r"square_\d+um", str(n))]     # spatialdata-io's Visium HD store
        pick = "square_008um" if "square_008um" in bins else (bins or names)[0]  # 8 um: 10x's recommended bins
        attrs = sdata.tables[pick].uns.get("spatialdata_attrs", {})
        region = attrs.get("region") if isinstance(attrs, dict) else None
        shapes = f"shapes={{'{region}': sdata.shapes['{region}']}}, " if isinstance(region, str) and \
            region in sdata.shapes else ""
        raise InputError(f"the store has several tables {names} and none is named 'table'"
                         + (", one per bin size of a Visium HD run" if len(bins) == len(names) else ""),
                         path=str(store),
                         fix="write the slide's table as 'table' of a store of its own and give that store, e.g. "
                             f"spatialdata.SpatialData({shapes}tables={{'table': sdata.tables['{pick}']}})"
                             f".write('{Path(store).stem}_{pick}.zarr')")
    return "table" if "table" in names else names[0]


def _refuse_duplicate_ids(ids: pd.Index, what: str, path: Path, fix: str) -> None:
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputError(f"{len(dup)} duplicate {what} (first: '{dup[0]}')", path=str(path), fix=fix)


def as_csr(x, *, what: str = "X", path: str | None = None, spots=None, genes=None) -> sp.csr_matrix:
    """X as CSR; half-precision values (which scipy.sparse does not hold) as float32, exactly.  Entries
    stored twice for one spot and gene (a matrix built from its arrays by hand) are added up, as scipy
    reads them: scanpy's gene variances square each stored entry, so they would select other genes.
    Half-precision values that are infinite are refused as what they are: values beyond float16's
    largest number, 65504, when the matrix (``what``, of the file ``path``) was written as float16.
    A dense array of Python objects (pandas' nullable columns, ``Int64``, give one: ``ad.AnnData(table)``
    of a table read with ``.convert_dtypes()``) is read as the numbers it holds, a missing value as NaN
    (:func:`_object_numbers`); values that are not numbers, or text, are an :class:`InputError` naming
    ``what`` (the matrix: X or a layer), the first such value, its spot and gene (``spots``, ``genes``:
    their names) and the fix."""
    x = x if sp.issparse(x) else np.asarray(x)
    if x.dtype.kind in "OUS":
        x = _object_numbers(x, what, spots, genes)
    if x.dtype == np.float16:
        beyond = np.isinf(x)
        if beyond.any():
            n_spots, n_genes = np.nonzero(beyond.any(axis=1))[0].size, np.nonzero(beyond.any(axis=0))[0].size
            raise InputError(f"{what} holds {int(beyond.sum())} infinite values (in {n_spots} spots and {n_genes} genes): "
                             "it is stored as float16, whose largest number is 65504, and these values were beyond "
                             "it when they were written as float16 (normalised to a total of a million, any gene of "
                             "more than 6.6% of a spot's counts is)", path=path,
                             fix=f"store {what} as float32 from its source (e.g. adata.X = "
                                 "adata.X.astype(np.float32) before write_h5ad, on the values before the float16 cast)")
        x = x.astype(np.float32)
    x = sp.csr_matrix(x)
    if not x.has_canonical_format:
        summed = x.copy()
        summed.sum_duplicates()
        if summed.nnz != x.nnz:         # only then: unsorted indices alone are kept as they are
            x = summed
    return x


def _object_numbers(x: np.ndarray, what: str, spots=None, genes=None) -> np.ndarray:
    """The numbers an array of Python objects holds (``pd.NA`` and None as NaN; Python ints as int64, as
    float64 beside a missing value), or an :class:`InputError` naming the first value that is not a number
    (text, also an array of text: numbers written as text are not read as numbers here)."""
    flat = pd.Series(x.ravel(), dtype=object)
    missing = flat.isna().to_numpy()
    text = flat.map(lambda v: isinstance(v, (str, bytes))).to_numpy()
    numbers = pd.to_numeric(flat.mask(missing | text, np.nan), errors="coerce")
    bad = np.flatnonzero(text | (numbers.isna().to_numpy() & ~missing))
    if bad.size:
        rows, cols = np.unravel_index(bad, x.shape) if x.ndim == 2 else (bad, np.zeros_like(bad))

        def name(names, k, kind):
            return f"{kind} '{names[int(k)]}'" if names is not None else f"{kind} #{int(k)}"

        first = f"first: {flat.iloc[bad[0]]!r}, {name(spots, rows[0], 'spot')}, {name(genes, cols[0], 'gene')}"
        if bad.size == x.size:            # every value text: numbers written as text (np.loadtxt(dtype=str)?)
            raise InputError(f"{what} holds text (dtype {x.dtype}), not numbers ({first})",
                             fix=f"store them as numbers: adata.{what} = adata.{what}.astype('float64')")
        named = np.unique(cols)
        whole = x.ndim == 2 and bad.size == named.size * x.shape[0]         # whole columns of text: names
        raise InputError(f"{what} holds values that are not numbers (dtype {x.dtype}): {bad.size} of them ({first})"
                         + (f"; {name(genes, named[0], 'gene')}"
                            + (f" and {named.size - 1} more hold" if named.size > 1 else " holds")
                            + " no number in any spot: names read as a column of the table (pd.read_csv without "
                              "index_col=0?)" if whole else ""),
                         fix=f"store the counts as numbers in {what}: a table's spot names as its index "
                             "(pd.read_csv(..., index_col=0)) and its counts as its columns, "
                             "anndata.AnnData(table.astype('float64'))")
    values = numbers.to_numpy()
    if values.dtype == object:            # True/False (the count checks name them), or a mix pandas left so
        values = np.array(values.tolist())
    return values.reshape(x.shape)


def _check_slide(adata: ad.AnnData, path: str, *, images: bool = True) -> None:
    """The slide checks of :mod:`stcore.validate` (those the notebook API runs too), with the
    coordinates stored back as an n_spots x 2 float array and duplicate gene names made unique.  Tissue
    images in ``uns['spatial']`` that the spots do not fit (an ``.h5ad`` whose coordinates are at an image's
    scale, or with another slide's image: :func:`stcore.validate.images_out_of_register`) are left out,
    with a warning, as the Visium reader leaves out those of another run's scale factors: the run's
    files (qc.h5ad, each domains.h5ad) then hold no image that ``sc.pl.spatial`` would draw the spots on
    out of place (``images``: whether to check them; the Visium reader has)."""
    from .validate import images_out_of_register

    adata.obsm[SPATIAL_KEY] = check_slide(adata, spatial_key=SPATIAL_KEY, path=path, make_genes_unique=True)
    found = images and images_out_of_register(
        adata, adata.obsm[SPATIAL_KEY], SPATIAL_KEY, path=path,
        outcome="{images} of the slide {are} left out of the run's files (qc.h5ad, domains.h5ad), and its figures "
                "are drawn without {it} (sc.pl.spatial(adata, color='domain', img_key=None) draws domains.h5ad)")
    if found:
        library, off = found
        spatial = adata.uns["spatial"]
        images = spatial[next(k for k in spatial if str(k) == library)]["images"]
        for k in off:
            del images[k]


# Columns of the pipeline's TSVs that hold names or versions, never numbers.
TEXT_COLUMNS = ("sample", "group", "method", "seed", "trained_by", "spot", "source", "slide", "cpu_model",
                "cpu_kernels", "blas", "mkl_cnr", "method_package")


def read_tsv(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    """A TSV the pipeline wrote, read back as written: ids and versions as text (a sample '01'
    stays '01', '1e3' stays '1e3', 'NA' stays 'NA'); only empty cells are missing values."""
    header = pd.read_csv(path, sep="\t", nrows=0).columns
    text = {c: str for c in header if c in TEXT_COLUMNS or c.endswith(("_version", "_sha256"))}
    return pd.read_csv(path, sep="\t", dtype=text, keep_default_na=False, na_values=[""], **kwargs)


def _umask() -> int:
    """This process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_path(path: str | os.PathLike):
    """Context manager giving a temporary path beside ``path``, renamed onto it on success with the
    mode a plain ``open()`` would give it (0666 less the umask)."""
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
            if self.tmp.is_file():          # mkstemp made it 0600: the mode open() would give instead
                os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write ``adata`` so that ``path`` either holds the whole file or does not exist."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")


def write_labels(path: str | os.PathLike, obs: pd.DataFrame, labels) -> None:
    """labels.tsv of a run: spot and domain, and for a group each spot's slide (``obs['slide']``)."""
    table = pd.DataFrame({"spot": obs.index, "domain": np.asarray(labels)})
    if "slide" in obs:
        table["slide"] = obs["slide"].to_numpy()
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
