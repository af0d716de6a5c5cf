"""The slide formats and the files each format's reader opens.

Standard library only: the Snakefile loads it without running stcore/__init__.py (as the plan, stcore/plan) to
declare every file a slide is read from as an input of its ``qc`` job, and :func:`input_digest`
hashes the same files, so an edited positions file reruns the slide and ``input_sha256`` names
exactly what was read.  :func:`digest_stamp` keeps that digest in a stamp file that the ``qc``
job takes as an input, rewritten only when the content changed: results follow the content of
the slide's files, not their modification times.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

from .plan.stamps import write_stamp

__all__ = ["FORMATS", "STEREO_BIN", "MATRIX_FILES", "FOLDER_FILES", "slide_files", "missing_slide", "misnamed_matrix",
           "dangling_link", "lfs_pointer",
           "is_anndata_zarr", "input_digest",
           "digest_stamp", "stamp_digest"]

FORMATS = ("h5ad", "visium", "visium_hd", "xenium", "spatialdata", "stereo")

#: The square bins a Stereo-seq GEM (format stereo) is read into where the sheet gives no bin_size: 50 x 50
#: DNBs (25 um), the bins domain papers on Stereo-seq use.
STEREO_BIN = 50

# The matrix of each folder format (the file whose absence means "not this format's folder").
MATRIX_FILES = {"visium": "filtered_feature_bc_matrix.h5", "visium_hd": "filtered_feature_bc_matrix.h5",
                "xenium": "cell_feature_matrix.h5"}

# The matrix of each folder format, what a folder holding it is and the format that reads it.
_OTHER_FORMATS = {"filtered_feature_bc_matrix.h5": ("a Space Ranger folder", "visium (a Visium HD bin folder: visium_hd)"),
                  "cell_feature_matrix.h5": ("a Xenium output folder", "xenium")}

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


# characters a web page or a document puts where a space looks to be
ODD_SPACES = {"\u00a0": "a non-breaking space (U+00A0)", "\u202f": "a narrow non-breaking space (U+202F)",
              "\u2007": "a figure space (U+2007)"}


def dangling_link(path: str) -> tuple[str, str] | None:
    """``path`` a symbolic link whose target does not exist (a folder copied without the files its
    links point to; a git-annex or DVC file whose content was not fetched): the problem and its
    fix, or None."""
    path = str(path)
    if not os.path.islink(path) or os.path.exists(path):
        return None
    target = os.readlink(path)
    if ".git/annex/objects" in target:
        return (f"is a symbolic link to '{target}', which does not exist: a git-annex file whose content is not here",
                f"fetch its content: git annex get '{path}'")
    if ".dvc/cache" in target:
        return (f"is a symbolic link to '{target}', which does not exist: a DVC file whose content is not here",
                "fetch its content: dvc pull (in the DVC repository that holds it)")
    return (f"is a symbolic link to '{target}', which does not exist (a folder copied without the files its "
            "links point to?)", "copy what it points to in its place, or point the link at a file or folder that exists")


def lfs_pointer(path: str) -> tuple[str, str] | None:
    """``path`` a Git LFS pointer (a small text file that stands for the content in a repository
    cloned without ``git lfs``): the problem and its fix, or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(200)
    except OSError:
        return None
    if not head.startswith(b"version https://git-lfs.github.com/spec/"):
        return None
    size = re.search(rb"\nsize (\d+)", head)
    held = f" of a {int(size.group(1)):,}-byte file" if size else ""
    return (f"a Git LFS pointer{held}, not the file's content (the repository was cloned or downloaded without "
            "git lfs)", f"fetch the content: git lfs pull --include '{os.path.basename(path)}' in the repository that "
                        "holds it (git lfs install first, if git lfs is new to this machine)")


def miswritten(path: str) -> bool:
    """Whether ``path`` is written as no path on this machine is: a file URL ('file:///...', as a file
    manager copies a location), inside quotes (as a shell or Windows' 'Copy as path' writes it), or
    with Windows' '\\' (:func:`missing_slide` names each, with the path meant)."""
    path = str(path)
    return _file_url(path) or _quoted(path) or "\\" in path


def _file_url(path: str) -> bool:
    """'file:///...': a location copied from a file manager or a browser."""
    return bool(re.match(r"file:/", path, re.IGNORECASE))


def _quoted(path: str) -> bool:
    """'...' or "...": a path quoted as a shell or Windows' 'Copy as path' writes it."""
    return len(path) > 2 and path[0] == path[-1] and path[0] in "'\""


def missing_slide(path: str, fmt: str) -> tuple[str, str] | None:
    """What is missing of the slide at ``path`` for format ``fmt`` (None when its reader has its
    matrix): the problem and its fix, as the plan warns of it before any job and the reader
    refuses the slide."""
    path = str(path)
    kind = "folder" if fmt in MATRIX_FILES else "file"
    if _file_url(path) and not os.path.exists(path):   # a file manager's copied location
        from urllib.parse import unquote, urlparse

        plain = unquote(urlparse(path).path)
        return ((f"{kind} not found: the path is a file URL (file://...), as a file manager or a browser copies a "
                 "file's location, not a path"),
                (f"write it as a path in the sample sheet ('{plain}'" + (" exists" if os.path.exists(plain) else "")
                 + ")"))
    if _quoted(path) and not os.path.exists(path):
        plain = path[1:-1]          # as a shell quotes a path with spaces, or Windows' "Copy as path" writes it
        problem = (f"{kind} not found: the path is written inside quotes ({path[0]}), as a shell or Windows' 'Copy "
                   "as path' writes it, and the quotes are read as part of its name")
        inner = missing_slide(plain, fmt) if miswritten(plain) and not os.path.exists(plain) else None
        if inner:                   # "C:\Users\...\a.h5ad": the quotes and the Windows path in one message
            return (problem + "; without them" + inner[0].split(":", 1)[1], "delete the quotes and " + inner[1])
        return (problem, (f"delete the quotes around the path in the sample sheet ('{plain}'"
                          + (" exists" if os.path.exists(plain) else "") + ")"))
    if "\\" in path and not os.path.exists(path):     # a path written on Windows: '\\' is part of a name here
        slashed = re.sub(r"^[A-Za-z]:", "", path.replace("\\", "/"))
        drive = re.match(r"^[A-Za-z]:\\", path)
        return ((f"{'folder' if fmt in MATRIX_FILES else 'file'} not found: the path separates its folders with "
                 "'\\' as Windows does" + (f" and starts with the drive {path[:2]}" if drive else "")
                 + "; on this machine '\\' is part of a file name, and folders are separated by '/'"),
                (f"write the path with '/' in the sample sheet ('{slashed}'"
                 + (" exists" if os.path.exists(slashed) else "") + ")"
                 + (", and give the folder the slide has on this machine" if drive else "")))
    odd = ODD_SPACES
    spaced = path.translate({ord(c): " " for c in odd})
    if spaced != path and not os.path.exists(path):     # copied from a web page or a document
        which = sorted({odd[c] for c in path if c in odd})
        return ((f"{'folder' if fmt in MATRIX_FILES else 'file'} not found: the path holds {', '.join(which)}, "
                 "which looks like a space but is another character"),
                (f"type the path's spaces again in the sample sheet ('{spaced}'"
                 + (" exists" if os.path.exists(spaced) else "") + ")"))
    where = "" if os.path.isabs(path) else (f" (a relative path is read from the folder the workflow runs in, "
                                            f"not the sheet's: {os.path.abspath(path)})")
    if fmt in MATRIX_FILES:
        if not os.path.isdir(path):
            if dangling_link(path):
                return dangling_link(path)
            if not os.path.exists(path):
                return "folder not found" + where, "check the path and the format in the sample sheet"
            name = os.path.basename(path)
            if name.endswith(MATRIX_FILES[fmt]):        # the folder's matrix itself
                return (f"is a file, the folder's matrix {name}; format {fmt} reads the folder that holds it",
                        f"give the folder's path in the sample sheet: '{os.path.dirname(path) or '.'}'")
            if name.endswith(".h5ad"):
                return (f"is an .h5ad file; format {fmt} reads a folder", "set the sample sheet's format to h5ad")
            return f"is a file; format {fmt} reads a folder", "check the path and the format in the sample sheet"
        if not os.path.isfile(os.path.join(path, MATRIX_FILES[fmt])):
            return misnamed_matrix(path, fmt) or (f"'{MATRIX_FILES[fmt]}' not found in the folder",
                                                  "point the path at the folder that holds it")
        return None
    if fmt == "spatialdata":
        if os.path.isdir(path) and is_anndata_zarr(path):
            return ("an AnnData .zarr store (anndata's write_zarr), not a SpatialData store: it holds no table",
                    f"write it as an .h5ad file and read that with format h5ad: {_as_h5ad(path)}")
        return None if os.path.isdir(path) else ("SpatialData store not found" + where,
                                                 "check the path in the sample sheet (a .zarr folder)")
    if fmt == "stereo" and os.path.isdir(path):        # SAW's output folder: its GEM named
        gems = sorted(f for f in os.listdir(path) if f.endswith((".gem", ".gem.gz")))
        return ("is a folder; format stereo reads a GEM file (SAW's <chip>.gem.gz or <chip>.tissue.gem.gz)"
                + (f"; the folder holds {', '.join(repr(f) for f in gems[:3])}" if gems else ""),
                f"give the GEM file's path in the sample sheet ('{os.path.join(path, gems[0])}')" if len(gems) == 1
                else "give the path of the slide's GEM file in the sample sheet")
    if os.path.isdir(path):
        if is_anndata_zarr(path):
            return ("an AnnData .zarr store (anndata's write_zarr), not an .h5ad file",
                    f"write it as an .h5ad file and give that file's path: {_as_h5ad(path)}")
        return ("is a folder; format h5ad reads an .h5ad file",
                "give the .h5ad file's path (a Space Ranger folder: format visium; a .zarr store: format spatialdata)")
    if os.path.isfile(path):
        return None
    return dangling_link(path) or ("file not found" + where, "check the path in the sample sheet")


def misnamed_matrix(folder: str, fmt: str) -> tuple[str, str] | None:
    """The folder format's matrix (:data:`MATRIX_FILES`) under the name a download gives it: the
    sample's name in front (10x's dataset pages and GEO: ``V1_Mouse_Brain_filtered_feature_bc_matrix.h5``,
    ``151673_filtered_feature_bc_matrix.h5``), or gzipped (``.h5.gz``).  The problem and its fix (the
    command that gives it the name the reader opens), or None."""
    name = MATRIX_FILES.get(fmt)
    try:
        files = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))
    except OSError:
        return None
    if not name:
        return None
    link = dangling_link(os.path.join(folder, name))
    if link:
        return f"'{name}' {link[0]}", link[1]
    if name == "filtered_feature_bc_matrix.h5":          # a Visium HD run's outs (or binned_outputs) folder
        binned = os.path.join(folder, "binned_outputs")
        if not os.path.isdir(binned) and os.path.basename(os.path.normpath(folder)) == "binned_outputs":
            binned = folder
        bins = sorted(d for d in (os.listdir(binned) if os.path.isdir(binned) else [])
                      if re.fullmatch(r"square_\d+um", d) and os.path.isdir(os.path.join(binned, d)))
        if bins:
            pick = "square_008um" if "square_008um" in bins else bins[0]     # 8 um: 10x's recommended bins
            what = "'binned_outputs'" if binned == folder else "'outs'"
            return (f"a Visium HD {what} folder: its matrices are per bin size ({', '.join(bins)})",
                    f"point the sample sheet at {os.path.join(binned, pick)} or another square_*um folder, with "
                    "format visium_hd")
    for other, (what, use) in _OTHER_FORMATS.items():
        if other != name and other in files and fmt not in use:
            return (f"'{name}' not found in the folder; it holds '{other}': {what}, not a folder of format {fmt}",
                    f"set the sample sheet's format to {use}")
    if "zarr.json" in files or ".zgroup" in files:       # a .zarr store
        if is_anndata_zarr(folder):
            return (f"an AnnData .zarr store (anndata's write_zarr), not a folder of format {fmt}",
                    f"write it as an .h5ad file and read that with format h5ad: {_as_h5ad(folder)}")
        return (f"a .zarr store (SpatialData's), not a folder of format {fmt}",
                "set the sample sheet's format to spatialdata")
    if "filtered_feature_cell_matrix.h5" in files:       # Space Ranger's cell segmentation of a Visium HD run
        return (f"'{name}' not found in the folder; it holds 'filtered_feature_cell_matrix.h5': the cells of Space "
                "Ranger's segmentation of a Visium HD run (segmented_outputs), which are not read",
                "point the sample sheet at the run's bins, outs/binned_outputs/square_008um, with format visium_hd")
    mex = os.path.join(folder, name[:-len(".h5")])
    if os.path.isdir(mex):       # the same matrix as Market Exchange files (matrix.mtx.gz, barcodes, features)
        return (f"'{name}' not found in the folder; it holds '{os.path.basename(mex)}/', the matrix as Market Exchange "
                "files (matrix.mtx.gz, barcodes.tsv.gz, features.tsv.gz), which are not read",
                f"copy the {name} of the same run into the folder (the instrument's pipeline writes both; the "
                "dataset's download page offers it)")
    named = [f for f in files if f != name and f.endswith(name)]
    if len(named) > 1:          # a download of several samples in one folder: which is this slide's is not known
        return (f"'{name}' not found in the folder; it holds {len(named)} matrices under the names a download gives "
                f"them ({', '.join(repr(f) for f in named[:3])}{', ...' if len(named) > 3 else ''}): several "
                "samples' files in one folder",
                f"give each sample a folder of its own, holding its matrix as {name} and its own spatial/ folder")
    if named:
        return (f"'{name}' not found in the folder; it holds '{named[0]}', the matrix under the name a download "
                "gives it (the sample's name in front)",
                f"rename it to {name}: mv '{os.path.join(folder, named[0])}' '{os.path.join(folder, name)}'")
    raw = ([f for f in files if f.endswith("raw_feature_bc_matrix.h5")]
           if name == "filtered_feature_bc_matrix.h5" else [])
    if raw:         # Space Ranger's matrix of every spot of the slide, under the tissue or not
        return (f"'{name}' not found in the folder; it holds '{raw[0]}', Space Ranger's raw matrix of every spot "
                "(under the tissue or not), which is not read: the spots outside the tissue would be put into domains",
                f"copy the {name} of the same Space Ranger run (its spots under the tissue) into the folder")
    for f in files:
        if f.endswith(name + ".gz"):
            return (f"'{name}' not found in the folder; it holds '{f}', the matrix gzipped",
                    f"unpack it as {name}: gunzip -c '{os.path.join(folder, f)}' > '{os.path.join(folder, name)}'")
    return None


def is_anndata_zarr(path: str) -> bool:
    """Whether the folder ``path`` is a .zarr store of one AnnData (anndata's ``write_zarr``: its
    top level's attributes say ``encoding-type: anndata``, in ``.zattrs`` for zarr format 2 or
    ``zarr.json`` for format 3), not a SpatialData store."""
    for name in (".zattrs", "zarr.json"):
        try:
            with open(os.path.join(path, name), encoding="utf-8") as fh:
                attrs = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(attrs, dict) and name == "zarr.json":
            attrs = attrs.get("attributes", {})
        if isinstance(attrs, dict) and attrs.get("encoding-type") == "anndata":
            return True
    return False


def _as_h5ad(path: str) -> str:
    """The call that writes the AnnData .zarr store ``path`` as an .h5ad file beside it."""
    stem = os.path.normpath(path)
    stem = stem[:-len(".zarr")] if stem.endswith(".zarr") else stem
    return f"anndata.read_zarr('{path}').write_h5ad('{stem}.h5ad')"


def _hash_file(h, path: str) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)


def input_digest(path: str | os.PathLike, fmt: str | None = None) -> str:
    """sha256 of every file the reader of format ``fmt`` opens for the slide at ``path``
    (:func:`slide_files`): a file's content; for a folder or store, each file's name (relative
    to it) and content, in a fixed order.  ``fmt`` None: h5ad for a file; for a folder, the
    format whose matrix it holds, else a SpatialData store.  This is the slide's
    ``input_sha256`` in every result."""
    path = str(path)
    if fmt is None:
        fmt = "h5ad" if not os.path.isdir(path) else next(
            (f for f, m in MATRIX_FILES.items() if os.path.isfile(os.path.join(path, m))), "spatialdata")
    h = hashlib.sha256()
    folder = os.path.isdir(path)
    for f in slide_files(path, fmt):
        if folder:
            h.update(os.path.relpath(f, path).encode() + b"\0")
        _hash_file(h, f)
    return h.hexdigest()


def _file_keys(files: list[str]) -> dict[str, list[int]]:
    """What identifies each file's content without reading it: size, modification time, inode
    and status-change time (ctime, which copying tools such as ``cp -p``, ``rsync -a`` and
    ``tar x`` cannot set back)."""
    keys = {}
    for f in files:
        st = os.stat(f)
        keys[os.path.abspath(f)] = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
    return keys


def digest_stamp(path: str, fmt: str, stamp: str, scratch: str | None = None,
                 report: str | None = None) -> str | None:
    """Keep ``stamp`` (a small JSON file) holding :func:`input_digest` of the slide at ``path``;
    return the stamp's path, or None when the slide has no file yet.

    The stamp also records each file's size, modification time, inode and ctime: while they are
    unchanged the files are not read again (a few ``stat`` calls).  When they changed the files
    are hashed; the stamp is rewritten with a fresh modification time only when the digest
    changed (so the ``qc`` job that takes it as an input reruns, whatever the files' own
    modification times), and otherwise keeps its modification time.  ``scratch`` (a run that
    executes no job, ``snakemake -n``): ``stamp`` is not written; a changed digest is written under
    ``scratch`` and that path returned (:func:`stcore.plan.stamps.write_stamp`).

    A stamp that is not there (the first run, or results/records/input/ deleted) is dated 1970 where
    ``report`` (the slide's qc report, which holds the input_sha256 its results were made from) names
    this content, so that it reruns nothing (the files are no input of the qc job: their times, newer
    after a copy without -p, rerun nothing either); dated now where it names other content, so the
    slide reruns; dated as the slide's files (their newest modification time) where there is no
    report or it names none."""
    try:
        return _update_stamp(path, fmt, stamp, scratch, report)
    except OSError:         # unreadable now: the qc job reads the files itself and says what is wrong
        return None


def stamp_digest(stamp: str) -> str | None:
    """The input_sha256 a stamp of :func:`digest_stamp` holds, or None (no stamp yet)."""
    try:
        with open(stamp) as fh:
            return json.load(fh).get("input_sha256") or None
    except (OSError, ValueError):
        return None


def _update_stamp(path: str, fmt: str, stamp: str, scratch: str | None, report: str | None = None) -> str | None:
    files = slide_files(path, fmt)
    if not files:
        return None
    keys = _file_keys(files)
    try:
        with open(stamp) as fh:
            old = json.load(fh)
    except (OSError, ValueError):
        old = {}
    if old.get("files") == keys and old.get("format") == fmt and old.get("input_sha256"):
        return stamp
    digest = input_digest(path, fmt)    # keys taken before: a file changed meanwhile is hashed next time
    same = old.get("input_sha256") == digest and os.path.isfile(stamp)
    if same and scratch is not None:
        return stamp                    # same content: nothing to rerun, nothing written
    times = None
    if same:
        st = os.stat(stamp)
        times = (st.st_atime_ns, st.st_mtime_ns)     # same content: the stamp stays as old
    elif not os.path.lexists(stamp):
        made_from = None if report is None else stamp_digest(report)
        if made_from == digest:
            times = (0, 0)                           # the results were made from this content: no rerun
        elif made_from is None:
            newest = max(keys.values(), key=lambda key: key[1])[1]
            times = (newest, newest)                 # nothing says what they were made from: dated as the files
    return write_stamp(stamp, {"input_sha256": digest, "format": fmt, "files": keys}, times_ns=times,
                       scratch=scratch)
