"""The slide formats and the files each format's reader opens.

Standard library only: the Snakefile loads this file on its own (without importing stcore) to
declare every file a slide is read from as an input of its ``qc`` job, and
:func:`stcore.provenance.input_digest` hashes the same files, so an edited positions file
reruns the slide and ``input_sha256`` names exactly what was read.
"""
from __future__ import annotations

import os

__all__ = ["FORMATS", "MATRIX_FILES", "FOLDER_FILES", "slide_files"]

FORMATS = ("h5ad", "visium", "visium_hd", "xenium", "spatialdata")

# The matrix of each folder format (the file whose absence means "not this format's folder").
MATRIX_FILES = {"visium": "filtered_feature_bc_matrix.h5", "visium_hd": "filtered_feature_bc_matrix.h5",
                "xenium": "cell_feature_matrix.h5"}

_SPACE_RANGER = ("filtered_feature_bc_matrix.h5", "spatial/tissue_positions.parquet",
                 "spatial/tissue_positions.csv", "spatial/tissue_positions_list.csv",
                 "spatial/scalefactors_json.json", "spatial/tissue_hires_image.png",
                 "spatial/tissue_lowres_image.png")
# Every file a folder format's reader may open, relative to the folder, in a fixed order.
FOLDER_FILES = {"visium": _SPACE_RANGER, "visium_hd": _SPACE_RANGER,
                "xenium": ("cell_feature_matrix.h5", "cells.parquet", "cells.csv.gz")}

# Elements of a SpatialData store the reader does not read (it reads the table and the shapes).
_STORE_SKIPPED = ("images", "labels", "points")


def slide_files(path: str, fmt: str) -> list[str]:
    """The files of the slide at ``path`` (format ``fmt``) that its reader opens and that exist
    now, in a fixed order; empty when none does (the reader then says what is missing)."""
    path = str(path)
    if fmt in FOLDER_FILES:
        files = [os.path.join(path, rel) for rel in FOLDER_FILES[fmt]]
        return [f for f in files if os.path.isfile(f)]
    if fmt == "spatialdata" and os.path.isdir(path):
        found = []
        for root, dirs, names in os.walk(path):
            if root == path:                # the store's top level: its elements
                dirs[:] = [d for d in dirs if d not in _STORE_SKIPPED]
            dirs.sort()
            found += [os.path.join(root, n) for n in sorted(names)]
        return found
    return [path] if os.path.isfile(path) else []
