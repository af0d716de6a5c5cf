"""Readers for Visium HD bin folders and Xenium output folders, on tiny fixtures written in the
instruments' on-disk layout, and one run of the DAG over both to a domains.h5ad drawn on the
tissue image."""
from __future__ import annotations

import importlib.util
import re
import sys

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from slides import snakemake, tiny_slide, write_visium
from stcore.errors import InputError
from stcore.io import READERS_INSTALL, read_slide
from stcore.provenance import input_digest

pyarrow = pytest.importorskip("pyarrow", reason=f"the parquet readers need pyarrow: {READERS_INSTALL}")


def _write_10x_h5(path, adata: ad.AnnData, feature_types: list[str]) -> None:
    from stcore.simulate import write_10x_h5

    write_10x_h5(adata, path, feature_types=feature_types)


def write_visium_hd(outs, adata: ad.AnnData, bin_um: int = 8, *, image: bool = True):
    """A Visium HD 'outs' folder with one bin size: binned_outputs/square_00Xum/ holding the
    matrix, spatial/tissue_positions.parquet, scale factors and a lowres image."""
    folder = outs / "binned_outputs" / f"square_{bin_um:03d}um"
    (folder / "spatial").mkdir(parents=True)
    bcs = [f"s_{bin_um:03d}um_{i // 8:05d}_{i % 8:05d}-1" for i in range(adata.n_obs)]
    a = adata.copy()
    a.obs_names = bcs
    _write_10x_h5(folder / "filtered_feature_bc_matrix.h5", a, ["Gene Expression"] * a.n_vars)
    xy = np.asarray(adata.obsm["spatial"])
    pd.DataFrame({"barcode": bcs, "in_tissue": np.ones(a.n_obs, np.int32),
                  "array_row": np.arange(a.n_obs) // 8, "array_col": np.arange(a.n_obs) % 8,
                  "pxl_row_in_fullres": xy[:, 1], "pxl_col_in_fullres": xy[:, 0]}
                 ).to_parquet(folder / "spatial" / "tissue_positions.parquet", index=False)
    (folder / "spatial" / "scalefactors_json.json").write_text(
        '{"spot_diameter_fullres": 29.0, "bin_size_um": %d.0, "microns_per_pixel": 0.27, '
        '"tissue_lowres_scalef": 0.1, "tissue_hires_scalef": 0.3, "fiducial_diameter_fullres": 300.0}' % bin_um)
    if image:
        import matplotlib.image as mpimg
        size = int(np.ceil(xy.max() * 0.1)) + 4
        img = np.zeros((size, size, 3), np.uint8)
        img[..., 0] = 200
        mpimg.imsave(folder / "spatial" / "tissue_lowres_image.png", img)
    return folder


def write_xenium(folder, adata: ad.AnnData, *, cells: str = "parquet"):
    """A Xenium output folder: cell_feature_matrix.h5 with gene and control features, and
    cells.parquet (or cells.csv.gz) with centroids in microns."""
    folder.mkdir(parents=True)
    ids = [f"aaa{i:04d}-1" for i in range(adata.n_obs)]
    controls = ad.AnnData(sp.csr_matrix(np.ones((adata.n_obs, 2), np.float32)),
                          obs=pd.DataFrame(index=adata.obs_names),
                          var=pd.DataFrame(index=["NegControlProbe_1", "BLANK_0001"]))
    both = ad.concat([adata, controls], axis=1)
    both.obs_names = ids
    _write_10x_h5(folder / "cell_feature_matrix.h5", both,
                  ["Gene Expression"] * adata.n_vars + ["Negative Control Probe", "Blank Codeword"])
    xy = np.asarray(adata.obsm["spatial"]) / 10
    table = pd.DataFrame({"cell_id": ids, "x_centroid": xy[:, 0], "y_centroid": xy[:, 1],
                          "transcript_counts": np.asarray(adata.X.sum(axis=1)).ravel().astype(int),
                          "cell_area": np.arange(adata.n_obs) + 10.5})
    table = table.iloc[::-1]                             # another order than the matrix's
    if cells == "parquet":
        table.to_parquet(folder / "cells.parquet", index=False)
    else:
        table.to_csv(folder / "cells.csv.gz", index=False)
    return folder


def test_visium_hd_bin_folder(tmp_path):
    slide = tiny_slide()
    folder = write_visium_hd(tmp_path / "outs", slide)
    a = read_slide(folder, "visium_hd")
    assert a.shape == slide.shape and a.obs_names[0].startswith("s_008um_")
    assert np.allclose(a.obsm["spatial"], slide.obsm["spatial"])
    assert (a.X != sp.csr_matrix(slide.X)).nnz == 0
    (lib, entry), = a.uns["spatial"].items()
    assert lib == tmp_path.name                          # the folder above outs/binned_outputs
    assert entry["scalefactors"]["bin_size_um"] == 8.0
    assert entry["images"]["lowres"].dtype == np.uint8 and entry["images"]["lowres"].shape[2] in (3, 4)


def test_visium_hd_outs_folder_is_refused_naming_the_bin_folders(tmp_path):
    write_visium_hd(tmp_path / "outs", tiny_slide(), 8, image=False)
    write_visium_hd(tmp_path / "outs", tiny_slide(), 16, image=False)
    with pytest.raises(InputError) as err:
        read_slide(tmp_path / "outs", "visium_hd")
    msg = str(err.value)
    assert "square_008um, square_016um" in msg and "binned_outputs/square_008um" in msg and "visium_hd" in msg


@pytest.mark.parametrize("cells", ["parquet", "csv"])
def test_xenium_folder(tmp_path, cells):
    slide = tiny_slide()
    folder = write_xenium(tmp_path / "xenium", slide, cells=cells)
    a = read_slide(folder, "xenium")
    assert list(a.var_names) == list(slide.var_names)    # control probes and codewords dropped
    assert a.n_obs == slide.n_obs and (a.X != sp.csr_matrix(slide.X)).nnz == 0
    assert np.allclose(a.obsm["spatial"], np.asarray(slide.obsm["spatial"]) / 10)   # matched by cell_id


def test_xenium_refusals_name_the_file_and_the_fix(tmp_path):
    folder = write_xenium(tmp_path / "x", tiny_slide())
    (folder / "cells.parquet").unlink()
    with pytest.raises(InputError, match="cells.parquet nor cells.csv.gz") as err:
        read_slide(folder, "xenium")
    assert str(folder) in str(err.value)
    with pytest.raises(InputError, match="cell_feature_matrix.h5' not found"):
        read_slide(tmp_path, "xenium")
    pd.DataFrame({"cell_id": ["zzz"], "x_centroid": [0.0], "y_centroid": [0.0]}).to_parquet(folder / "cells.parquet")
    with pytest.raises(InputError, match="not in the cells file"):
        read_slide(folder, "xenium")
    twice = write_xenium(tmp_path / "twice", tiny_slide())
    cells = pd.read_parquet(twice / "cells.parquet")
    pd.concat([cells, cells.iloc[:1]]).to_parquet(twice / "cells.parquet", index=False)
    with pytest.raises(InputError, match=r"1 duplicate cell ids \(first: 'aaa0063-1'\)\. Fix: use the cells file"):
        read_slide(twice, "xenium")


def test_xenium_cells_file_of_another_run_is_refused(tmp_path):
    """Xenium's cell ids repeat across runs, so another run's cells file finds every cell of the
    matrix and gave it another slide's position; its transcript_counts disagree with the matrix's
    counts for most cells: refused, naming the file.  Counts that include the controls, or that
    differ for a few cells, are taken."""
    folder = write_xenium(tmp_path / "run1", tiny_slide(seed=1))
    other = write_xenium(tmp_path / "run2", tiny_slide(seed=2))
    (folder / "cells.parquet").write_bytes((other / "cells.parquet").read_bytes())
    with pytest.raises(InputError) as err:
        read_slide(folder, "xenium")
    msg = str(err.value)
    assert re.match(rf"file '{re.escape(str(folder / 'cells.parquet'))}': transcript_counts disagrees with the counts "
                    r"of cell_feature_matrix\.h5 for \d+ of the 64 cells \(first: 'aaa\d{4}-1', \d+ in the file, \d+ in "
                    r"the matrix\): the cells file is of another run .*\. Fix: use the cells file of the Xenium output "
                    r"bundle that holds this cell_feature_matrix\.h5$", msg), msg
    own = write_xenium(tmp_path / "own", tiny_slide(seed=1))
    cells = pd.read_parquet(own / "cells.parquet")
    cells["control_probe_counts"], cells["control_codeword_counts"] = 1, 1
    cells["transcript_counts"] += 2                       # counted with the cell's controls
    cells.loc[cells.index[:20], "transcript_counts"] += 7     # and off for a few cells
    cells.to_parquet(own / "cells.parquet", index=False)
    assert read_slide(own, "xenium").n_obs == 64
    del cells["transcript_counts"]                       # a cells file without the column: taken as it is
    cells.to_parquet(own / "cells.parquet", index=False)
    assert read_slide(own, "xenium").n_obs == 64


def test_a_path_copied_as_a_file_url_or_inside_quotes_is_named_with_the_path_meant(tmp_path):
    """A slide's location copied from a file manager or a browser as a file URL ('file:///.../my%20slides/a.h5ad'),
    or a path inside quotes as a shell or Windows' 'Copy as path' writes it ("'/.../my slides/a.h5ad'"): each was
    'file not found (a relative path is read from the folder the workflow runs in, not the sheet's: ...). Fix:
    check the path in the sample sheet', of a file that is there; each is now named, with the path meant, by
    the reader and the plan's warning alike (stcore.formats.missing_slide)."""
    from urllib.parse import quote

    from stcore.formats import missing_slide

    folder = tmp_path / "my slides"
    folder.mkdir()
    tiny_slide().write_h5ad(folder / "a.h5ad")
    outs = write_visium(folder / "outs", tiny_slide())
    for plain, fmt in ((folder / "a.h5ad", "h5ad"), (outs, "visium")):
        kind = "file" if fmt == "h5ad" else "folder"
        cases = {f"file://{quote(str(plain))}": rf"{kind} not found: the path is a file URL \(file://\.\.\.\), as a file "
                                               r"manager or a browser copies a file's location, not a path\. Fix: write "
                                               r"it as a path in the sample sheet",
                 f"'{plain}'": rf"{kind} not found: the path is written inside quotes \('\), as a shell or Windows' 'Copy "
                               r"as path' writes it, and the quotes are read as part of its name\. Fix: delete the "
                               r"quotes around the path in the sample sheet",
                 f'"{plain}"': rf"{kind} not found: the path is written inside quotes \(\"\)"}
        for written, message in cases.items():
            message += rf".*\('{re.escape(str(plain))}' exists\)"
            with pytest.raises(InputError, match=message):
                read_slide(written, fmt)
            assert re.search(message, ". Fix: ".join(missing_slide(written, fmt))), missing_slide(written, fmt)
        read_slide(str(plain), fmt)                                     # the path meant: read


def test_a_windows_path_copied_inside_quotes_is_named_for_both_in_one_message():
    """Windows' 'Copy as path' writes '"C:\\Users\\me\\my slides\\a.h5ad"': the quotes were named and their fix
    kept the backslashes ("delete the quotes ... ('C:\\Users\\...')"), so the Windows path was named only on the
    next run; now one message names both and the path to write."""
    from stcore.formats import missing_slide

    problem, fix = missing_slide('"C:\\Users\\me\\my slides\\a.h5ad"', "h5ad")
    assert problem.startswith("file not found: the path is written inside quotes (\")"), problem
    assert "separates its folders with '\\' as Windows does and starts with the drive C:" in problem, problem
    assert fix.startswith("delete the quotes and write the path with '/' in the sample sheet "
                          "('/Users/me/my slides/a.h5ad')"), fix
    assert "give the folder the slide has on this machine" in fix, fix


def test_folders_and_files_as_they_come_are_named_with_their_fix(tmp_path):
    """A Xenium folder given as visium and a Space Ranger folder as xenium, the matrix file itself or an
    .h5ad given as a folder, the matrix as Market Exchange files only, links to nothing (a folder copied
    without what its links point to; git-annex) and Git LFS pointers: each was 'Space Ranger matrix ... not
    found. Fix: point the sample sheet at the Space Ranger 'outs' folder' (or 'file not found', or 'not a
    readable .h5ad ... Fix: re-export the slide'), of a folder or file that is there; each is now named,
    with its fix, by the reader and the plan's warning alike (stcore.formats.missing_slide)."""
    import os
    import shutil

    from stcore.formats import missing_slide

    slide = tiny_slide()
    outs = write_visium(tmp_path / "vis" / "outs", slide)
    xen = write_xenium(tmp_path / "xen", slide)

    def refused(path, fmt, message):
        with pytest.raises(InputError, match=message):
            read_slide(path, fmt)
        assert re.search(message, ". Fix: ".join(missing_slide(str(path), fmt))), missing_slide(str(path), fmt)

    refused(xen, "visium", r"it holds 'cell_feature_matrix\.h5': a Xenium output folder, not a folder of format visium\. "
                           r"Fix: set the sample sheet's format to xenium$")
    refused(outs, "xenium", r"it holds 'filtered_feature_bc_matrix\.h5': a Space Ranger folder, not a folder of format "
                            r"xenium\. Fix: set the sample sheet's format to visium")
    refused(outs / "filtered_feature_bc_matrix.h5", "visium",
            r"is a file, the folder's matrix filtered_feature_bc_matrix\.h5; format visium reads the folder that holds "
            rf"it\. Fix: give the folder's path in the sample sheet: '{re.escape(str(outs))}'$")
    slide.write_h5ad(tmp_path / "s.h5ad")
    refused(tmp_path / "s.h5ad", "visium", r"is an \.h5ad file; format visium reads a folder\. Fix: set the sample "
                                           r"sheet's format to h5ad$")
    mex = shutil.copytree(outs, tmp_path / "mex")
    os.remove(mex / "filtered_feature_bc_matrix.h5")
    (mex / "filtered_feature_bc_matrix").mkdir()
    refused(mex, "visium", r"it holds 'filtered_feature_bc_matrix/', the matrix as Market Exchange files .*which are "
                           r"not read\. Fix: copy the filtered_feature_bc_matrix\.h5 of the same run into the folder")
    annexed = shutil.copytree(outs, tmp_path / "annexed")
    os.remove(annexed / "filtered_feature_bc_matrix.h5")
    os.symlink("../.git/annex/objects/Xk/Pq/SHA256E-s1--0.h5/SHA256E-s1--0.h5",
               annexed / "filtered_feature_bc_matrix.h5")
    refused(annexed, "visium", r"'filtered_feature_bc_matrix\.h5' is a symbolic link to '\.\./\.git/annex/.*', which "
                               r"does not exist: a git-annex file whose content is not here\. Fix: fetch its content: "
                               r"git annex get ")
    os.symlink(tmp_path / "gone.h5ad", tmp_path / "link.h5ad")
    refused(tmp_path / "link.h5ad", "h5ad", r"is a symbolic link to '.*gone\.h5ad', which does not exist")
    moved = shutil.copytree(outs, tmp_path / "moved")
    shutil.rmtree(moved / "spatial")
    os.symlink(tmp_path / "elsewhere" / "spatial", moved / "spatial")
    with pytest.raises(InputError, match=r"no spot positions: spatial is a symbolic link to .*, which does not exist"):
        read_slide(moved, "visium")
    pointer = tmp_path / "lfs.h5ad"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 81234567\n")
    with pytest.raises(InputError, match=r"a Git LFS pointer of a 81,234,567-byte file, not the file's content .*Fix: "
                                         r"fetch the content: git lfs pull --include 'lfs\.h5ad'"):
        read_slide(pointer, "h5ad")
    lfs = shutil.copytree(outs, tmp_path / "lfs")
    shutil.copy(pointer, lfs / "filtered_feature_bc_matrix.h5")
    with pytest.raises(InputError, match=r"filtered_feature_bc_matrix\.h5': a Git LFS pointer"):
        read_slide(lfs, "visium")


def test_more_folders_as_they_come_are_named_with_their_fix(tmp_path):
    """A Visium HD run's binned_outputs/ folder, its segmented_outputs/ (cells), a Space Ranger folder whose
    spatial/ is packed as GEO gives it (GSM..._spatial.tar.gz: 'no spot positions ... Fix: copy Space Ranger's
    spatial/ folder next to filtered_feature_bc_matrix.h5'), and a .zarr store (SpatialData's
    or AnnData's) given with a folder format were 'Space Ranger matrix ... not found. Fix: point the sample
    sheet at the Space Ranger 'outs' folder' (the plan: ''filtered_feature_bc_matrix.h5' not found in the
    folder', for an HD outs folder too); each is now named with its fix, by the reader and the plan alike."""
    import shutil

    from stcore.formats import missing_slide

    slide = tiny_slide()
    bins = write_visium_hd(tmp_path / "hd" / "outs", slide)

    def refused(path, fmt, message):
        with pytest.raises(InputError, match=message):
            read_slide(path, fmt)
        assert re.search(message, ". Fix: ".join(missing_slide(str(path), fmt))), missing_slide(str(path), fmt)

    refused(bins.parent, "visium_hd", r"a Visium HD 'binned_outputs' folder: its matrices are per bin size "
                                      rf"\(square_008um\)\. Fix: point the sample sheet at {re.escape(str(bins))} ")
    refused(bins.parent.parent, "visium_hd", r"a Visium HD 'outs' folder: its matrices are per bin size")
    segmented = bins.parent.parent / "segmented_outputs"
    segmented.mkdir()
    shutil.copy(bins / "filtered_feature_bc_matrix.h5", segmented / "filtered_feature_cell_matrix.h5")
    refused(segmented, "visium_hd", r"it holds 'filtered_feature_cell_matrix\.h5': the cells of Space Ranger's "
                                    r"segmentation of a Visium HD run .*Fix: point the sample sheet at the run's bins")
    outs = write_visium(tmp_path / "geo" / "outs", slide)          # spatial/ packed, as GEO gives it
    import subprocess
    import tarfile

    with tarfile.open(outs / "GSM5_spatial.tar.gz", "w:gz") as packed:
        packed.add(outs / "spatial", arcname="spatial")
    shutil.rmtree(outs / "spatial")
    with pytest.raises(InputError, match=r"no spot positions: .*; the folder holds 'GSM5_spatial\.tar\.gz', the spatial/ "
                                         r"folder packed\. Fix: unpack it beside the matrix \(it holds spatial/\): "
                                         r"tar -xf '.*GSM5_spatial\.tar\.gz' -C '.*outs'$") as refusal:
        read_slide(outs, "visium")
    subprocess.run(str(refusal.value).split("(it holds spatial/): ")[1], shell=True, check=True)   # the fix
    assert read_slide(outs, "visium").n_obs == slide.n_obs
    slide.write_zarr(tmp_path / "a.zarr")
    refused(tmp_path / "a.zarr", "visium", r"an AnnData \.zarr store \(anndata's write_zarr\), not a folder of format "
                                           r"visium\. Fix: write it as an \.h5ad file")
    if importlib.util.find_spec("spatialdata"):
        store = write_spatialdata(tmp_path / "s.zarr", slide)
        refused(store, "xenium", r"a \.zarr store \(SpatialData's\), not a folder of format xenium\. Fix: set the sample "
                                 r"sheet's format to spatialdata$")


def test_other_tools_files_given_as_an_h5ad_are_named_with_their_conversion(tmp_path):
    """A Seurat object saved by R (saveRDS, gzipped), SeuratDisk's .h5Seurat, a loom file, a MuData .h5mu (each by
    its top-level groups) and an .h5ad.gz as GEO gives them, given with format h5ad: each was 'not a readable
    .h5ad (OSError: ... file signature not found / KeyError ...). Fix: re-export the slide with anndata's
    write_h5ad'; each is now named with the conversion that gives an .h5ad."""
    import gzip
    import shutil

    def refused(path, message):
        with pytest.raises(InputError, match=message):
            read_slide(path, "h5ad")

    (tmp_path / "seurat.rds").write_bytes(gzip.compress(b"X\n\x00\x00\x00\x03\x00\x04\x02\x00"))
    refused(tmp_path / "seurat.rds", r"an R data file \(saveRDS or save: a Seurat object\?\), not an \.h5ad\. Fix: "
                                     r"convert it in R with the counts as X: sceasy::convertFormat\(obj, .*main_layer = "
                                     r"'counts'")
    with h5py.File(tmp_path / "slide.h5Seurat", "w") as f:
        f.create_group("assays"), f.create_group("meta.data")
    refused(tmp_path / "slide.h5Seurat", r"a Seurat object in SeuratDisk's \.h5Seurat format, not an \.h5ad\. Fix: "
                                         r"convert it in R: SeuratDisk::Convert\(")
    with h5py.File(tmp_path / "slide.loom", "w") as f:
        f["matrix"] = np.zeros((3, 2))
        f.create_group("row_attrs"), f.create_group("col_attrs")
    refused(tmp_path / "slide.loom", r"a loom file, not an \.h5ad\. Fix: convert it: anndata\.read_loom\('.*slide\.loom'\)"
                                     r"\.write_h5ad\('.*slide\.h5ad'\)")
    with h5py.File(tmp_path / "slide.h5mu", "w") as f:
        f.create_group("mod"), f.create_group("obs")
    refused(tmp_path / "slide.h5mu", r"a MuData \.h5mu file \(several modalities\), not an \.h5ad\. Fix: .*\['rna'\]")
    tiny_slide().write_h5ad(tmp_path / "slide.h5ad")
    with open(tmp_path / "slide.h5ad", "rb") as plain, gzip.open(tmp_path / "GSM1_slide.h5ad.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    refused(tmp_path / "GSM1_slide.h5ad.gz", r"a gzipped file \(an \.h5ad\.gz, as GEO gives them\?\), not an \.h5ad\. "
                                             r"Fix: unpack it and give the file it writes: gunzip -c '.*GSM1_slide\.h5ad"
                                             r"\.gz' > '.*GSM1_slide\.h5ad'$")


def test_positions_whose_barcodes_are_written_otherwise_are_named_so(tmp_path):
    """A positions file whose barcodes lack the matrix's '-1' suffix, or carry a sample's name in front (as some
    downloads write them): the same spots, written otherwise, were refused as 'not in the positions file ...
    Fix: use the positions file of the same Space Ranger run', the run it was of; now the difference is named.
    Positions of another run keep their message."""
    slide = tiny_slide()
    rng = np.random.default_rng(0)
    slide.obs_names = ["".join(rng.choice(list("ACGT"), 16)) + "-1" for _ in range(slide.n_obs)]
    outs = write_visium(tmp_path / "outs", slide)
    path = outs / "spatial" / "tissue_positions.csv"
    own = pd.read_csv(path)
    first = sorted(slide.obs_names)[0]             # the first the refusal names (in sorted order)
    for barcodes, said in ((own["barcode"].str[:-2], rf"without the suffix '-1' \('{first[:-2]}' for '{first}'\)"),
                           ("S1_" + own["barcode"], rf"with a name in front \('S1_{first}' for '{first}'\)")):
        own.assign(barcode=barcodes).to_csv(path, index=False)
        with pytest.raises(InputError, match=r"64 barcodes of the matrix are not in the positions file \(first: .*\); it "
                                             rf"writes them otherwise: {said}\. Fix: write the positions file's barcodes "
                                             r"as the matrix writes them"):
            read_slide(outs, "visium")
    own.assign(barcode=["".join(rng.choice(list("ACGT"), 16)) + "-1" for _ in range(len(own))]).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"not in the positions file \(first: [ACGT]+-1\)\. Fix: use the positions file "
                                         r"of the same Space Ranger run$"):
        read_slide(outs, "visium")


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    folder = write_visium_hd(tmp_path / "outs", tiny_slide(), image=False)
    monkeypatch.setitem(sys.modules, "pyarrow", None)     # import pyarrow raises ImportError
    with pytest.raises(InputError) as err:
        read_slide(folder, "visium_hd")
    assert READERS_INSTALL in str(err.value) and "tissue_positions.parquet" in str(err.value)


def test_input_digest_covers_the_position_files(tmp_path):
    folder = write_xenium(tmp_path / "x", tiny_slide())
    before = input_digest(folder)
    t = pd.read_parquet(folder / "cells.parquet")
    t["x_centroid"] += 1.0
    t.to_parquet(folder / "cells.parquet", index=False)
    assert input_digest(folder) != before


@pytest.mark.slow
def test_dag_runs_visium_hd_and_xenium_to_domains_drawn_on_the_tissue(tmp_path):
    """Both readers through the DAG; the Xenium slide with n_clusters auto (chosen over 2..4)."""
    import matplotlib
    import scanpy as sc

    matplotlib.use("Agg")
    write_visium_hd(tmp_path / "hd" / "outs", tiny_slide(seed=1))
    write_xenium(tmp_path / "xen", tiny_slide(seed=2))
    has_sd = importlib.util.find_spec("spatialdata") is not None
    if has_sd:
        write_spatialdata(tmp_path / "slide.zarr", tiny_slide(seed=3))
    (tmp_path / "config.yaml").write_text(
        "samples: samples.tsv\nseeds: [0]\nsimulate: {}\nhvg: {n_top_genes: 30}\n"
        "train: {epochs: 3, device: cpu}\ncluster: {n_init: 1, auto_range: [2, 4]}\nmethods:\n  graphst: {model: graphst}\n")
    (tmp_path / "samples.tsv").write_text(
        "sample\tpath\tformat\tn_clusters\ttruth\n"
        "hd\thd/outs/binned_outputs/square_008um\tvisium_hd\t2\t\n"
        "xen\txen\txenium\tauto\t\n" + ("sdata\tslide.zarr\tspatialdata\t2\t\n" if has_sd else ""))
    run = snakemake(tmp_path, "--cores", "2")
    assert run.returncode == 0, run.stderr[-4000:]
    hd = ad.read_h5ad(tmp_path / "results/hd/graphst/seed0/domains.h5ad")
    lib = next(iter(hd.uns["spatial"]))
    assert "lowres" in hd.uns["spatial"][lib]["images"]
    ax = sc.pl.spatial(hd, color="domain", img_key="lowres", library_id=lib, show=False)
    assert ax is not None
    xen = ad.read_h5ad(tmp_path / "results/xen/graphst/seed0/domains.h5ad")
    assert "NegControlProbe_1" not in xen.var_names
    found = pd.read_csv(tmp_path / "results/xen/graphst/seed0/metrics.tsv", sep="\t")["domains_found"].iloc[0]
    assert 2 <= found <= 4 and xen.obs["domain"].nunique() == found
    log = (tmp_path / "logs/cluster/xen.graphst.seed0.log").read_text()
    if has_sd:
        sdata = ad.read_h5ad(tmp_path / "results/sdata/graphst/seed0/domains.h5ad")
        assert sdata.n_obs == 64 and sdata.obs["domain"].nunique() == 2
        import spatialdata as sd                              # the domains back in SpatialData, on the same shapes
        back = sd.read_zarr(tmp_path / "results/sdata/graphst/seed0/domains.zarr")
        table = back.tables["domains"]
        assert table.uns["spatialdata_attrs"]["region"] == "spots" and "spots" in back.shapes
        source = sd.read_zarr(tmp_path / "slide.zarr").tables["table"].obs
        assert table.n_obs == 64 and set(table.obs["spot_id"]) <= set(back.shapes["spots"].index)
        assert (table.obs["spot_id"] == source.loc[table.obs_names, "spot_id"]).all()      # each spot's own shape
        assert (table.obs["domain"].astype(str) == sdata.obs.loc[table.obs_names, "domain"].astype(str)).all()
    assert re.search(r"n_clusters auto: (BIC of the EEE mixture|stability \(\w+, \d+ runs\)) by G: 2: .*, 3: .*, 4: .*; "
                     r"chosen G = %d" % found, log)
    chosen = xen.uns["stcore"]["n_clusters"]                        # the curve beside the chosen number
    assert chosen["chosen"] == found and list(chosen["n_clusters"]) == [2, 3, 4] and len(chosen["score"]) == 3


def write_spatialdata(store, adata: ad.AnnData, *, with_obsm: bool = True):
    """A SpatialData .zarr store: circles for the spots and a table annotating them."""
    sd = pytest.importorskip("spatialdata", reason="SpatialData stores need: pip install -e '.[spatialdata]'")
    from spatialdata.models import ShapesModel, TableModel

    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    circles = ShapesModel.parse(xy, geometry=0, radius=np.full(len(xy), 5.0), index=np.arange(len(xy)) + 100)
    table = ad.AnnData(sp.csr_matrix(adata.X), obs=pd.DataFrame({"region": pd.Categorical(["spots"] * adata.n_obs),
                                                                  "spot_id": np.arange(adata.n_obs) + 100},
                                                                 index=adata.obs_names), var=adata.var[[]])
    if with_obsm:
        table.obsm["spatial"] = xy
    table = table[::-1].copy()                                 # another order than the shapes'
    table = TableModel.parse(table, region="spots", region_key="region", instance_key="spot_id")
    sd.SpatialData(shapes={"spots": circles}, tables={"table": table}).write(store)
    return store


@pytest.mark.parametrize("with_obsm", [True, False])
def test_spatialdata_store(tmp_path, with_obsm):
    slide = tiny_slide()
    store = write_spatialdata(tmp_path / "slide.zarr", slide, with_obsm=with_obsm)
    a = read_slide(store, "spatialdata")
    a = a[slide.obs_names]
    assert (a.X != sp.csr_matrix(slide.X)).nnz == 0
    assert np.allclose(a.obsm["spatial"], slide.obsm["spatial"])   # obsm, or the circles' centres
    assert input_digest(store) == input_digest(store) and len(input_digest(store)) == 64


def test_a_spatialdata_table_of_x_y_and_z_is_checked_as_an_h5ad_is(tmp_path):
    """A table whose obsm['spatial'] holds x, y and each section's z (two sections over one another)
    is refused as sections, as an .h5ad's is; the reader took its first two columns and laid the
    sections on one another (each spot's neighbours half from the other section)."""
    slide = tiny_slide()
    two = ad.concat([slide, slide], index_unique="-")
    xyz = np.column_stack([np.asarray(two.obsm["spatial"], float) + np.r_[np.zeros(64), np.full(64, 7.0)][:, None],
                           np.r_[np.zeros(64), np.full(64, 50.0)]])
    two.obsm["spatial"] = xyz
    store = write_spatialdata(tmp_path / "sections.zarr", two)
    with pytest.raises(InputError, match=r"obsm\['spatial'\] has 3 columns .*takes only 2 values \(0, 50\), each held "
                                         r"by many spots: the spots of several sections"):
        read_slide(store, "spatialdata")
    two.obsm["spatial"] = xyz[:, :2]          # x, y alone: the ids' suffixes ('-0', '-1') name the two sections
    with pytest.raises(InputError, match=r"the spot ids end in 2 suffixes \('-' then '0', '1'\)"):
        read_slide(write_spatialdata(tmp_path / "xy.zarr", two), "spatialdata")
    assert read_slide(write_spatialdata(tmp_path / "one.zarr", two[:64].copy()), "spatialdata").n_obs == 64


def _two_slides_store(store, shift, *, with_obsm: bool = True):
    """Two slides in one SpatialData store, each its own shapes element, one table annotating both
    (region ['spots_a', 'spots_b'], as spatialdata.concatenate joins two slides' stores); the
    second slide's spots moved by ``shift``."""
    sd = pytest.importorskip("spatialdata", reason="SpatialData stores need: pip install -e '.[spatialdata]'")
    from spatialdata.models import ShapesModel, TableModel

    parts = []
    for name, prefix, slide, move in (("spots_a", "AAAC", tiny_slide(seed=0), (0.0, 0.0)),
                                      ("spots_b", "AAAG", tiny_slide(seed=1), shift)):
        xy = np.asarray(slide.obsm["spatial"], dtype=float) + move
        circles = ShapesModel.parse(xy, geometry=0, radius=np.full(len(xy), 5.0), index=np.arange(len(xy)))
        table = ad.AnnData(sp.csr_matrix(slide.X), var=slide.var[[]],
                           obs=pd.DataFrame({"region": pd.Categorical([name] * slide.n_obs),
                                             "spot_id": np.arange(slide.n_obs)},
                                            index=[f"{prefix}{i}" for i in range(slide.n_obs)]))
        if with_obsm:
            table.obsm["spatial"] = xy
        table = TableModel.parse(table, region=name, region_key="region", instance_key="spot_id")
        parts.append(sd.SpatialData(shapes={name: circles}, tables={"table": table}))
    both = sd.concatenate(parts, concatenate_tables=True)
    both.write(store)
    return both


@pytest.mark.parametrize("with_obsm", [True, False])
def test_slides_joined_in_one_spatialdata_table_are_refused(tmp_path, with_obsm):
    """A table that annotates two slides' elements whose spots lie among each other (spatialdata.concatenate
    of two stores) is refused naming its region column, as a slide column is; the reader took it as one
    slide (with obsm['spatial']: one graph over both; without: 'annotates no single shapes element').
    Elements side by side (a slide's fields of view) are read, each row at its own element's shape."""
    import stcore

    both = _two_slides_store(tmp_path / "both.zarr", (37.0, 21.0), with_obsm=with_obsm)
    with pytest.raises(InputError, match=r"the spots come from 2 slides \(obs\['region'\]: 'spots_a', 'spots_b'\) "
                                         r"\(the SpatialData elements its table annotates.*100% of the spots have their "
                                         r"nearest neighbour in another slide.*Fix: .*sdata\.subset\(\['spots_a'\], "
                                         r"filter_tables=True\)\.write\('spots_a\.zarr'\)"):
        read_slide(tmp_path / "both.zarr", "spatialdata")
    if with_obsm:                                              # the table given to the notebook API as it is
        with pytest.raises(InputError, match=r"the spots come from 2 slides \(obs\['region'\]"):
            stcore.gr.spatial_graph(both.tables["table"].copy())
    both.subset(["spots_a"], filter_tables=True).write(tmp_path / "a.zarr")      # the fix
    assert read_slide(tmp_path / "a.zarr", "spatialdata").n_obs == 64
    _two_slides_store(tmp_path / "side.zarr", (900.0, 0.0), with_obsm=with_obsm)
    side = read_slide(tmp_path / "side.zarr", "spatialdata")
    assert side.n_obs == 128
    b = (side.obs["region"] == "spots_b").to_numpy()
    assert np.allclose(side.obsm["spatial"][b], np.asarray(tiny_slide(seed=1).obsm["spatial"]) + (900.0, 0.0))


def test_a_cosmx_table_as_spatialdata_io_stores_it_is_refused_naming_its_global_coordinates(tmp_path):
    """spatialdata-io's CosMx reader keeps each cell's position in its field of view as the table's
    obsm['spatial'] and the slide's in obsm['global'] (obs['fov'] names the field).  The reader took
    obsm['spatial'] alone: the fields laid on one another, one graph over them, without a word.  Now
    refused naming obsm['global'], which the reader keeps; the fix, followed, is read."""
    sd = pytest.importorskip("spatialdata", reason="SpatialData stores need: pip install -e '.[spatialdata]'")
    from spatialdata.models import ShapesModel, TableModel

    slide = tiny_slide(n_side=16)
    xy = np.asarray(slide.obsm["spatial"], float) + np.random.default_rng(5).uniform(-30, 30, (slide.n_obs, 2))
    middle = xy.min(axis=0) + np.ptp(xy, axis=0) / 2
    fov = 1 + (xy[:, 0] > middle[0]) + 2 * (xy[:, 1] > middle[1])
    local = xy - np.array([xy[fov == f].min(axis=0) - 20 for f in range(1, 5)])[fov - 1]
    table = ad.AnnData(sp.csr_matrix(slide.X), var=slide.var[[]],
                       obs=pd.DataFrame({"fov": fov, "region": pd.Categorical(["cells"] * slide.n_obs),
                                         "cell_ID": np.arange(slide.n_obs)}, index=[f"c{i}" for i in range(slide.n_obs)]),
                       obsm={"spatial": local, "global": xy})
    table = TableModel.parse(table, region="cells", region_key="region", instance_key="cell_ID")
    circles = ShapesModel.parse(xy, geometry=0, radius=np.full(len(xy), 5.0), index=np.arange(len(xy)))
    store = tmp_path / "cosmx.zarr"
    sdata = sd.SpatialData(shapes={"cells": circles}, tables={"table": table})
    sdata.write(store)
    with pytest.raises(InputError, match=r"obsm\['spatial'\] lays the 4 fields of view of obs\['fov'\] \(1, 2, 3, 4\) on "
                                         r"one another .*where obsm\['global'\] put them side by side.*Fix: store the "
                                         r"slide's coordinates as obsm\['spatial'\]: adata\.obsm\['spatial'\] = "
                                         r"adata\.obsm\['global'\]"):
        read_slide(store, "spatialdata")
    sdata.tables["table"].obsm["spatial"] = sdata.tables["table"].obsm["global"]      # the fix, followed
    sdata.write(tmp_path / "fixed.zarr")
    assert np.allclose(read_slide(tmp_path / "fixed.zarr", "spatialdata").obsm["spatial"], table[
        read_slide(tmp_path / "fixed.zarr", "spatialdata").obs_names].obsm["global"])


def test_a_visium_hd_store_of_one_table_per_bin_size_names_the_command_that_reads_one(tmp_path):
    """spatialdata-io's Visium HD store holds a table per bin size (square_002um, square_008um, ...), none named
    'table' (was: 'the store has several tables [...] and none is named 'table'. Fix: keep the table of the
    slide under the name 'table'', which no sample sheet column can say); now the refusal names the run's bins
    and the command that writes one of them as a store of its own, which is read."""
    sd = pytest.importorskip("spatialdata", reason="SpatialData stores need: pip install -e '.[spatialdata]'")
    from spatialdata.models import ShapesModel, TableModel

    slide = tiny_slide()
    xy = np.asarray(slide.obsm["spatial"], float)
    shapes, tables = {}, {}
    for size in ("square_002um", "square_008um", "square_016um"):
        shapes[f"hd_{size}"] = ShapesModel.parse(xy, geometry=0, radius=np.full(len(xy), 5.0), index=np.arange(len(xy)))
        table = ad.AnnData(sp.csr_matrix(slide.X), var=slide.var[[]],
                           obs=pd.DataFrame({"region": pd.Categorical([f"hd_{size}"] * slide.n_obs),
                                             "location_id": np.arange(slide.n_obs)}, index=slide.obs_names))
        tables[size] = TableModel.parse(table, region=f"hd_{size}", region_key="region", instance_key="location_id")
    sdata = sd.SpatialData(shapes=shapes, tables=tables)
    sdata.write(tmp_path / "hd.zarr")
    with pytest.raises(InputError, match=re.escape(
            "the store has several tables ['square_002um', 'square_008um', 'square_016um'] and none is named 'table', "
            "one per bin size of a Visium HD run. Fix: write the slide's table as 'table' of a store of its own and "
            "give that store, e.g. spatialdata.SpatialData(shapes={'hd_square_008um': sdata.shapes['hd_square_008um']}, "
            "tables={'table': sdata.tables['square_008um']}).write('hd_square_008um.zarr')")):
        read_slide(tmp_path / "hd.zarr", "spatialdata")
    sd.SpatialData(shapes={"hd_square_008um": sdata.shapes["hd_square_008um"]},          # the fix, followed
                   tables={"table": sdata.tables["square_008um"]}).write(tmp_path / "hd_square_008um.zarr")
    assert np.allclose(read_slide(tmp_path / "hd_square_008um.zarr", "spatialdata").obsm["spatial"], xy)


def test_counts_kept_beside_x_in_a_spatialdata_table_are_named(tmp_path):
    """A SpatialData table whose X was log-normalised with the counts kept in layers['counts'] (as scanpy's
    tutorials leave a table): the reader dropped the layers, so the qc job said only 'the count matrix holds
    non-integer values'; now it names the layer and the fix in the store's table, as for an .h5ad."""
    sd = pytest.importorskip("spatialdata", reason="SpatialData stores need: pip install -e '.[spatialdata]'")
    from stcore.qc import QCParams, prepare_slide

    sdata = sd.read_zarr(write_spatialdata(tmp_path / "slide.zarr", tiny_slide()))
    table = sdata.tables["table"]
    table.layers["counts"] = table.X.copy()
    table.X = sp.csr_matrix(np.log1p(table.X.toarray()))
    sdata.write(tmp_path / "logged.zarr")
    with pytest.raises(InputError, match=r"X holds non-integer values, and layers\['counts'\] holds whole numbers: the raw "
                                         r"counts\? Fix: store them in X: adata\.X = adata\.layers\['counts'\] in the "
                                         r"store's table \(adata = sdata\.tables\['table'\]\) and write the store again"):
        prepare_slide(str(tmp_path / "logged.zarr"), "spatialdata", QCParams())
    table.X = table.layers["counts"]                                 # the fix, followed
    sdata.write(tmp_path / "fixed.zarr")
    prepare_slide(str(tmp_path / "fixed.zarr"), "spatialdata", QCParams())


def test_spatialdata_refusals(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="SpatialData store not found"):
        read_slide(tmp_path / "none.zarr", "spatialdata")
    monkeypatch.setitem(sys.modules, "spatialdata", None)
    with pytest.raises(InputError, match=re.escape("pip install -e '.[spatialdata]'")):
        read_slide(tmp_path, "spatialdata")



def _tag_visium_h5(folder, **attrs):
    """The attributes Space Ranger writes on its matrix file."""
    with h5py.File(folder / "filtered_feature_bc_matrix.h5", "a") as f:
        for key, value in attrs.items():
            f.attrs[key] = value


def test_read_visium_keeps_the_library_id_and_metadata_the_matrix_names(tmp_path):
    """stcore.read.visium: the library id, chemistry and software version of the matrix file (not
    the folder's name), as scanpy's reader gives them on the same folder."""
    import warnings

    import scanpy as sc

    import stcore

    slide = tiny_slide()
    folder = write_visium(tmp_path / "copied_folder" / "outs", slide)
    _tag_visium_h5(folder, library_ids=np.array([b"V19L01-041_C1"]), chemistry_description=b"Spatial 3' v1",
                   software_version=b"spaceranger-2.0.0")
    import matplotlib.image as mpimg

    for key in ("hires", "lowres"):                     # scanpy's reader needs both images
        mpimg.imsave(folder / "spatial" / f"tissue_{key}_image.png", np.full((8, 8, 3), 120, np.uint8))
    ours = stcore.read.visium(folder)
    assert list(ours.uns["spatial"]) == ["V19L01-041_C1"]
    meta = ours.uns["spatial"]["V19L01-041_C1"]["metadata"]
    assert meta["chemistry_description"] == "Spatial 3' v1" and meta["software_version"] == "spaceranger-2.0.0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sc.read_visium(folder)
    assert list(ours.obs_names) == list(theirs.obs_names) and list(ours.var_names) == list(theirs.var_names)
    assert (ours.X != sp.csr_matrix(theirs.X)).nnz == 0
    assert np.array_equal(ours.obsm["spatial"], np.asarray(theirs.obsm["spatial"], float))
    assert list(theirs.uns["spatial"]) == list(ours.uns["spatial"])
    for key in ("chemistry_description", "software_version"):
        assert theirs.uns["spatial"]["V19L01-041_C1"]["metadata"][key] == meta[key]
    # a matrix file that names no library: the folder above outs/, as before
    plain = write_visium(tmp_path / "mybrain" / "outs", slide)
    assert list(stcore.read.visium(plain).uns["spatial"]) == ["mybrain"]


def test_scale_factors_of_another_run_leave_the_tissue_images_out(tmp_path, caplog):
    """scalefactors_json.json of another run (an image of another resolution: tissue_hires_scalef
    1.6 times this one's): the spots were drawn over the tissue image out of register (a third of
    them past its edge) in every domains.png and in domains.h5ad's uns['spatial']."""
    import json

    import stcore

    folder = write_visium(tmp_path / "outs", tiny_slide())
    assert set(next(iter(stcore.read.visium(folder).uns["spatial"].values()))["images"]) == {"hires", "lowres"}
    factors = folder / "spatial" / "scalefactors_json.json"
    scale = json.loads(factors.read_text())
    factors.write_text(json.dumps(scale | {"tissue_hires_scalef": scale["tissue_hires_scalef"] * 1.6,
                                           "tissue_lowres_scalef": scale["tissue_lowres_scalef"] * 1.6}))
    with caplog.at_level("WARNING"):
        entry = next(iter(stcore.read.visium(folder).uns["spatial"].values()))
    assert entry["images"] == {} and entry["scalefactors"]["tissue_hires_scalef"] == scale["tissue_hires_scalef"] * 1.6
    assert re.search(r"scalefactors_json\.json: tissue_hires_scalef 3\.76\d* puts 25 of the 64 spots outside the hires "
                     r"image \(2000 x 2000 pixels; the spots reach 2824 x 2281\): the scale factors are of another run "
                     r"or image; the tissue images are left out.*Fix: use the scalefactors_json\.json Space Ranger wrote",
                     caplog.text), caplog.text


def test_scale_factors_without_a_spot_diameter_keep_the_images(tmp_path, caplog):
    """A scalefactors_json.json without spot_diameter_fullres (an edited or older file): the images are
    checked by their edges alone and kept where the spots fit them (the spacing check, which needs the
    diameter, stopped the reader with a TypeError)."""
    import json

    outs = write_visium(tmp_path / "outs", tiny_slide())
    scale = outs / "spatial" / "scalefactors_json.json"
    factors = json.loads(scale.read_text())
    del factors["spot_diameter_fullres"]
    scale.write_text(json.dumps(factors))
    with caplog.at_level("WARNING", logger="stcore"):
        adata = read_slide(outs, "visium")
    (entry,) = adata.uns["spatial"].values()
    assert set(entry["images"]) == {"hires", "lowres"} and not caplog.records


def test_a_simulated_visium_folder_is_drawn_by_scanpy_as_a_real_one(tmp_path):
    """stcore.simulate.write_visium writes the tissue images and the spot diameter Space Ranger
    writes: scanpy's reader reads the folder, and sc.pl.spatial draws the spots on the image (it
    stopped with StopIteration on a library without images)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scanpy as sc
    from matplotlib.image import AxesImage

    import stcore
    from stcore.simulate import SimParams, simulate_slide
    from stcore.simulate import write_visium as write_outs

    slide = simulate_slide(SimParams(n_spots=300, n_genes=50, markers_per_domain=5, n_layers=3, n_regions=0, seed=1))
    folder = write_outs(slide, tmp_path / "outs", library_id="demo")
    adata = stcore.read.visium(folder)
    entry = adata.uns["spatial"]["demo"]
    assert entry["images"]["hires"].shape[:2] == (2000, 2000) and entry["images"]["lowres"].shape[:2] == (600, 600)
    pitch = 100.0                                           # the simulator's distance between neighbouring spots
    assert entry["scalefactors"]["spot_diameter_fullres"] == pytest.approx(0.55 * pitch)
    # the spots lie on the pink tissue, the corner of the image is white
    hires, scalef = entry["images"]["hires"], entry["scalefactors"]["tissue_hires_scalef"]
    col, row = np.round(adata.obsm["spatial"] * scalef).astype(int).T
    assert (hires[row, col] == (236, 196, 214)).all() and (hires[-1, -1] == 248).all()
    adata.obs["layer"] = slide.obs["domain"].to_numpy()
    ax = sc.pl.spatial(adata, color="layer", show=False)[0]
    assert any(isinstance(a, AxesImage) for a in ax.get_children())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sc.read_visium(folder)
    assert theirs.uns["spatial"]["demo"]["images"]["lowres"].shape[:2] == (600, 600)
    plt.close("all")


@pytest.mark.parametrize("cells", ["parquet", "csv"])
def test_read_xenium_keeps_the_cell_table(tmp_path, cells):
    """stcore.read.xenium: every column of the cell table in obs, matched by cell id."""
    import stcore

    slide = tiny_slide()
    a = stcore.read.xenium(write_xenium(tmp_path / "xenium", slide, cells=cells))
    assert {"transcript_counts", "cell_area"} <= set(a.obs.columns)
    assert not {"cell_id", "x_centroid", "y_centroid"} & set(a.obs.columns)
    assert np.array_equal(a.obs["transcript_counts"].to_numpy(), np.asarray(a.X.sum(axis=1)).ravel().astype(int))
    assert np.allclose(a.obs["cell_area"].to_numpy(), np.arange(slide.n_obs) + 10.5)


@pytest.mark.parametrize("annotates_shapes", [True, False])
def test_domains_go_back_into_spatialdata(tmp_path, annotates_shapes):
    """stcore.export.domains_spatialdata after the notebook API: a store spatialdata.read_zarr opens,
    the domains annotating the slide's own shapes (or circles at the coordinates where its table
    annotates none), each seed's domains of a consensus beside them (they were left out), nothing left
    beside it."""
    sd = pytest.importorskip("spatialdata", reason="SpatialData stores need: pip install -e '.[spatialdata]'")
    from spatialdata.models import TableModel

    import stcore
    from stcore.export import domains_spatialdata

    slide = tiny_slide(seed=3)
    store = write_spatialdata(tmp_path / "slide.zarr", slide)
    if not annotates_shapes:                       # a table with coordinates only
        table = ad.AnnData(sp.csr_matrix(slide.X), obs=pd.DataFrame(index=slide.obs_names), var=slide.var[[]],
                           obsm={"spatial": np.asarray(slide.obsm["spatial"], float)})
        store = tmp_path / "plain.zarr"
        sd.SpatialData(tables={"table": TableModel.parse(table)}).write(store)
    adata = stcore.read.spatialdata(store)
    stcore.tl.domains(adata, n_clusters=2, seed=range(3), n_top_genes=30, train={"epochs": 2}, progress=False)
    part = adata[10:].copy()                                   # as after QC: some spots dropped
    domains_spatialdata(store, part, tmp_path / "out" / "domains.zarr")
    back = sd.read_zarr(tmp_path / "out" / "domains.zarr")
    table = back.tables["domains"]
    region = table.uns["spatialdata_attrs"]["region"]
    assert region == ("spots" if annotates_shapes else "domains_spots") and region in back.shapes
    assert list(table.obs_names) == list(part.obs_names)
    assert (table.obs["domain"].astype(str) == part.obs["domain"].astype(str)).all()
    ids = table.obs[table.uns["spatialdata_attrs"]["instance_key"]]
    shapes = back.shapes[region]
    centres = np.c_[shapes.geometry.x.loc[ids].to_numpy(), shapes.geometry.y.loc[ids].to_numpy()]
    assert np.allclose(centres, part.obsm["spatial"])          # each spot's domain on its own shape
    assert table.uns["stcore"]["key"] == "domain"
    # a consensus's seeds (a data frame in obsm) are kept as domains.h5ad keeps them
    pd.testing.assert_frame_equal(table.obsm["domain_seeds"].astype(str), part.obsm["domain_seeds"].astype(str))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["domains.zarr"]


def test_domains_in_spatialdata_keep_their_categories_and_colours(tmp_path):
    """domains.zarr (stcore.export.domains_spatialdata of a domains.h5ad) holds the domains as the
    domains.h5ad does: categorical in its order ('10' after '9'), in the colours of its figure
    (uns['<key>_colors'], matched to the annotation), so spatialdata-plot draws them as domains;
    the column was text without colours, drawn by spatialdata-plot as one unlabelled colour scale."""
    sd = pytest.importorskip("spatialdata", reason="SpatialData stores need: pip install -e '.[spatialdata]'")

    import stcore
    from stcore.export import domains_adata, domains_spatialdata

    store = write_spatialdata(tmp_path / "slide.zarr", tiny_slide(seed=3))
    adata = stcore.read.spatialdata(store)
    labels = np.arange(adata.n_obs) % 12
    adata.obs["layer"] = pd.Categorical([f"L{v}" for v in (labels + 1) % 12])
    domains = domains_adata(adata, labels, np.zeros((adata.n_obs, 4)), sp.eye(adata.n_obs, format="csr"),
                            method="graphst", info={}, truth="layer")
    domains_spatialdata(store, domains, tmp_path / "domains.zarr")
    table = sd.read_zarr(tmp_path / "domains.zarr").tables["domains"]
    assert isinstance(table.obs["domain"].dtype, pd.CategoricalDtype)
    assert list(table.obs["domain"].cat.categories) == [str(v) for v in range(12)]
    assert (table.obs["domain"].astype(str) == domains.obs.loc[table.obs_names, "domain"].astype(str)).all()
    assert list(table.uns["domain_colors"]) == list(domains.uns["domain_colors"])


# --- Stereo-seq GEM files (format stereo) -------------------------------------------------------

def write_gem(path, lines, columns=("geneID", "x", "y", "MIDCount"), *,
              header=("#FileFormat=GEMv0.1", "#SortedBy=None", "#BinSize=1", "#Omics=Transcriptomics",
                      "#OffsetX=0", "#OffsetY=0")):
    """A GEM as SAW writes it: '#' header lines, a line of column names, one tab-separated line per gene at
    one DNB; gzipped where the name ends in .gz."""
    import gzip

    text = "".join(f"{h}\n" for h in header) + "\t".join(columns) + "\n" + \
        "".join("\t".join(str(v) for v in line) + "\n" for line in lines)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _dnb_counts(seed=0, n_dnb=300, n_genes=12):
    """Counts of genes at distinct DNB positions (x, y), a sparse spots x genes matrix."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(200 * 200, size=n_dnb, replace=False)
    xy = np.column_stack([flat % 200 + 1000, flat // 200 + 3000])
    counts = rng.poisson(0.4, size=(n_dnb, n_genes)) * rng.integers(1, 4, size=(n_dnb, n_genes))
    counts[counts.sum(axis=1) == 0, 0] = 1
    return xy, counts, [f"Gene{g}" for g in range(n_genes)]


def test_a_stereo_gem_at_bin_1_reads_its_matrix_exactly(tmp_path):
    """bin_size 1: one spot per DNB holding its counts, at its own x, y; a gene's count at a DNB given in two
    lines is their sum; read in chunks of 7 lines (the reader sums across chunks) as in one."""
    from stcore.read import stereo

    xy, counts, genes = _dnb_counts()
    lines = [(genes[g], x, y, c) for (x, y), row in zip(xy.tolist(), counts) for g, c in enumerate(row) if c]
    split = lines[5]                                           # one count given as two lines
    lines[5] = (split[0], split[1], split[2], split[3] - 1 if split[3] > 1 else split[3])
    if split[3] > 1:
        lines.append((split[0], split[1], split[2], 1))
    rng = np.random.default_rng(1)
    gem = write_gem(tmp_path / "chip.gem", [lines[i] for i in rng.permutation(len(lines))])
    for adata in (stereo(gem, 1), read_slide(gem, "stereo", bin_size=1), __import__("stcore").io.read_stereo(
            gem, 1, chunksize=7)):
        names = [f"{x}_{y}" for x, y in xy.tolist()]
        assert sorted(adata.obs_names) == sorted(names) and set(adata.var_names) == set(genes)
        got = adata[names, genes]
        assert np.array_equal(got.X.toarray(), counts) and sp.issparse(adata.X)
        assert np.array_equal(got.obsm["spatial"], xy.astype(float))
        assert adata.uns["stereo"]["bin_size"] == 1 and adata.uns["stereo"]["header"]["FileFormat"] == "GEMv0.1"


def test_a_gzipped_stereo_gem_in_bins_of_2_sums_the_four_dnbs_of_each_bin(tmp_path):
    """bin_size 2: each bin the sum of its four DNBs (x // 2, y // 2), at its centre (the mean of the DNBs'
    positions); an older GEM's MIDCounts, geneName beside geneID (the names, geneID in var['gene_ids']),
    ExonCount not read, header lines kept, gzipped; the default bin is 50."""
    from stcore.io import STEREO_BIN

    rng = np.random.default_rng(2)
    bins = [(bx, by) for bx in range(3) for by in range(2)]
    lines, want = [], {}
    for bx, by in bins:
        for dx in (0, 1):
            for dy in (0, 1):
                for gid, name in (("ENSG1", "Actb"), ("ENSG2", "Gfap")):
                    c = int(rng.integers(1, 9))
                    lines.append((gid, name, 2 * bx + dx, 2 * by + dy, c, 0))
                    want[(bx, by, name)] = want.get((bx, by, name), 0) + c
    gem = write_gem(tmp_path / "chip.tissue.gem.gz", lines,
                    columns=("geneID", "geneName", "x", "y", "MIDCounts", "ExonCount"))
    adata = read_slide(gem, "stereo", bin_size=2)
    assert adata.n_obs == len(bins) and list(adata.var_names) == ["Actb", "Gfap"]
    assert list(adata.var["gene_ids"]) == ["ENSG1", "ENSG2"]
    for bx, by in bins:
        row = adata[f"{bx}_{by}"]
        assert [row[:, g].X.toarray().item() for g in ("Actb", "Gfap")] == [want[(bx, by, "Actb")],
                                                                             want[(bx, by, "Gfap")]]
        assert tuple(row.obsm["spatial"][0]) == (2 * bx + 0.5, 2 * by + 0.5)
    assert adata.uns["stereo"]["header"]["OffsetX"] == "0"
    whole = read_slide(gem, "stereo")                           # the sheet's empty bin_size: bins of 50
    assert STEREO_BIN == 50 and whole.n_obs == 1 and whole.X.sum() == sum(want.values())
    assert tuple(whole.obsm["spatial"][0]) == (24.5, 24.5)


def test_a_stereo_gems_offsets_are_kept_and_not_applied(tmp_path):
    """SAW's #OffsetX= / #OffsetY= (x + OffsetX, y + OffsetY: a DNB's position on the chip's mask) are kept in
    uns['stereo']['header'] and not applied, as stereopy's read_gem leaves them, whose overlay of SAW's registered
    image takes x, y as written: a GEM with offsets 37 and 1234 reads to the same bins, counts and coordinates as
    the same lines with offsets 0 (applied, 37 would move DNBs into other bins of 50)."""
    xy, counts, genes = _dnb_counts(seed=3)
    lines = [(genes[g], x, y, c) for (x, y), row in zip(xy.tolist(), counts) for g, c in enumerate(row) if c]
    plain = read_slide(write_gem(tmp_path / "plain.gem", lines), "stereo")
    header = ("#FileFormat=GEMv0.1", "#SortedBy=None", "#BinSize=1", "#Omics=Transcriptomics",
              "#OffsetX=37", "#OffsetY=1234")
    shifted = read_slide(write_gem(tmp_path / "shifted.gem", lines, header=header), "stereo")
    assert shifted.uns["stereo"]["header"]["OffsetX"] == "37" and shifted.uns["stereo"]["header"]["OffsetY"] == "1234"
    assert list(shifted.obs_names) == list(plain.obs_names) and list(shifted.var_names) == list(plain.var_names)
    assert (shifted.X != plain.X).nnz == 0
    assert np.array_equal(shifted.obsm["spatial"], plain.obsm["spatial"])
    assert shifted.obsm["spatial"].min() >= xy.min()                      # the lines' own x, y: none shifted to 0


def test_a_cell_bin_stereo_gem_is_read_by_cell(tmp_path):
    """A CellID column: one spot per cell, its counts summed, at the mean x, y of its lines; CellID 0 (no
    cell) left out."""
    lines = [("A", 10, 10, 2, 7), ("B", 12, 10, 1, 7), ("A", 11, 14, 3, 7), ("A", 40, 40, 5, 9),
             ("B", 41, 40, 4, 9), ("A", 0, 0, 100, 0), ("B", 500, 500, 100, 0)]
    from stcore.io import read_stereo

    gem = write_gem(tmp_path / "chip.cellbin.gem", lines, columns=("geneID", "x", "y", "MIDCount", "CellID"))
    for adata in (read_slide(gem, "stereo"), read_stereo(gem, chunksize=2)):     # in one chunk, in chunks of 2 lines
        assert sorted(adata.obs_names) == ["7", "9"]
        assert adata["7"].X.toarray().tolist() == [[5, 1]] and adata["9"].X.toarray().tolist() == [[5, 4]]
        assert np.allclose(adata["7"].obsm["spatial"], [[11, 34 / 3]]) and np.allclose(adata["9"].obsm["spatial"],
                                                                                       [[40.5, 40]])
        assert adata.X.sum() == 15 and adata.uns["stereo"]["spots"] == "cells"      # the lines of no cell not counted


def test_stereo_refusals_name_the_file_and_the_fix(tmp_path):
    """A GEF given as a GEM, a GEM without its count column, a negative or missing count, a bin size that is
    no positive whole number, a folder: one line naming the file and the fix; the sheet refuses a bin_size
    that is no positive whole number, and one given for another format, before any job."""
    from stcore.read import stereo
    from stcore.plan import PlanError
    from stcore.plan.sheet import read_sheet

    gef = tmp_path / "chip.tissue.gef"
    with h5py.File(gef, "w") as f:
        f.create_group("geneExp/bin1")
    with pytest.raises(InputError, match=r"chip\.tissue\.gef': an HDF5 file \(a Stereo-seq GEF.*not a GEM.*Fix: .*"
                                         r"geftools view -i '.*chip\.tissue\.gef' -o '.*chip\.gem' -s chip"):
        read_slide(gef, "stereo")
    no_count = write_gem(tmp_path / "a.gem", [("A", 1, 1, 2)], columns=("geneID", "x", "y", "counts"))
    with pytest.raises(InputError, match=r"a\.gem': not a GEM: column \['MIDCount'\] missing \(its columns: "
                                         r"\['geneID', 'x', 'y', 'counts'\]\)\. Fix: give the GEM SAW wrote"):
        read_slide(no_count, "stereo")
    csv = tmp_path / "c.gem"
    csv.write_text("geneID,x,y,MIDCount\nA,1,1,2\n")
    with pytest.raises(InputError, match=r"missing .*; the line is not tab-separated"):
        read_slide(csv, "stereo")
    archive = tmp_path / "outs.tar"                            # SAW's output packed: 3 MB without a line end
    archive.write_bytes(np.random.default_rng(0).integers(97, 123, 3 << 20, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"outs\.tar': not a GEM: columns \['geneID', 'x', 'y', 'MIDCount'\] missing "
                                         r"\(its columns: \['[a-z]{40}\.\.\.'\]\)\. Fix") as refused:
        read_slide(archive, "stereo")
    assert len(str(refused.value)) < 600
    for count, shown in (("-3", "MIDCount -3"), ("", "MIDCount nan")):
        bad = write_gem(tmp_path / "b.gem.gz", [("A", 1, 1, 2), ("B", 2, 1, count), ("A", 3, 1, 1)])
        with pytest.raises(InputError, match=rf"b\.gem\.gz': MIDCount holds a missing or negative count at line 9 "
                                             rf"\({shown}\)\. Fix: give the GEM SAW wrote"):
            stereo(bad, 1)
    good = write_gem(tmp_path / "g.gem", [("A", 1, 1, 2)])
    for size in (0, -50, 2.5, "25um", True):
        with pytest.raises(InputError, match=rf"g\.gem': bin_size '{re.escape(str(size))}' is not a positive whole "
                                             r"number .*Fix: set the sample sheet's bin_size to a whole number"):
            stereo(good, size)
    saw = tmp_path / "outs"
    saw.mkdir()
    write_gem(saw / "C04.tissue.gem.gz", [("A", 1, 1, 2)])
    with pytest.raises(InputError, match=r"outs': is a folder; format stereo reads a GEM file \(SAW's <chip>\.gem\.gz "
                                         r"or <chip>\.tissue\.gem\.gz\); the folder holds 'C04\.tissue\.gem\.gz'\. Fix: "
                                         r"give the GEM file's path in the sample sheet \('.*outs/C04\.tissue\.gem\.gz'\)$"):
        read_slide(saw, "stereo")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("sample\tpath\tformat\tn_clusters\tbin_size\ns1\tg.gem\tstereo\t2\t50.0\n"
                     "s2\tx.h5ad\th5ad\t2\t20\n")
    with pytest.raises(PlanError, match=r"sample 's2': bin_size '20' is given for format h5ad.*Fix: leave its "
                                        r"bin_size cell empty"):
        read_sheet(str(sheet))
    sheet.write_text("sample\tpath\tformat\tn_clusters\tbin_size\ns1\tg.gem\tstereo\t2\t50.0\ns3\tg.gem\tstereo\t2\t\n")
    assert [r["bin_size"] for r in read_sheet(str(sheet))] == [50, ""]
    sheet.write_text("sample\tpath\tformat\tn_clusters\tbin\ns1\tg.gem\tstereo\t2\t100\n")     # as Giotto names it
    with pytest.raises(PlanError, match=r"column 'bin' is not a column stcore reads .*it looks meant as 'bin_size'"):
        read_sheet(str(sheet))


def test_dag_reads_a_stereo_gem_row_in_the_bins_its_sheet_gives(tmp_path):
    """A sheet row of format stereo runs through qc: the GEM summed into the bins of its bin_size (a slide of
    8 x 8 bins of 2 x 2 DNBs, each bin's counts split over its four DNBs); another bin_size in the sheet reruns
    its qc job (the job's settings), and its results follow."""
    slide = tiny_slide()
    counts = slide.X.toarray().astype(int)
    lines = []
    for i, row in enumerate(counts):
        bx, by = i % 8, i // 8
        for g, c in enumerate(row):
            for k in range(c):                     # each count at one of the bin's four DNBs
                lines.append((slide.var_names[g], 2 * bx + k % 2, 2 * by + (k // 2) % 2, 1))
    write_gem(tmp_path / "chip.gem.gz", lines)
    (tmp_path / "config.yaml").write_text(
        "samples: samples.tsv\nseeds: [0]\nsimulate: {}\nhvg: {n_top_genes: 30}\n"
        "train: {epochs: 3, device: cpu}\ncluster: {n_init: 1}\nmethods:\n  graphst: {model: graphst}\n")
    sheet = "sample\tpath\tformat\tn_clusters\tbin_size\ngem\tchip.gem.gz\tstereo\t2\t{}\n"
    (tmp_path / "samples.tsv").write_text(sheet.format(2))
    run = snakemake(tmp_path, "--cores", "1", "results/gem/qc.h5ad")
    assert run.returncode == 0, run.stderr[-4000:]
    qc = ad.read_h5ad(tmp_path / "results/gem/qc.h5ad")
    assert qc.n_obs == 64 and qc.uns["stereo"]["bin_size"] == 2
    names = [f"{i % 8}_{i // 8}" for i in range(64)]
    assert np.array_equal(qc[names, list(slide.var_names)].X.toarray(), counts)
    assert np.array_equal(qc[names].obsm["spatial"], np.array([[2 * (i % 8) + 0.5, 2 * (i // 8) + 0.5]
                                                              for i in range(64)]))
    (tmp_path / "samples.tsv").write_text(sheet.format(4))
    dry = snakemake(tmp_path, "--cores", "1", "-n", "results/gem/qc.h5ad")
    assert dry.returncode == 0 and re.search(r"rule qc:", dry.stdout + dry.stderr), dry.stdout[-3000:]
    run = snakemake(tmp_path, "--cores", "1", "results/gem/qc.h5ad")
    assert run.returncode == 0, run.stderr[-4000:]
    assert ad.read_h5ad(tmp_path / "results/gem/qc.h5ad").n_obs == 16
    for size, said in (("25um", r"'25um' is not valid"), ("0", r"0 is less than the minimum of 1")):
        (tmp_path / "samples.tsv").write_text(sheet.format(size))
        dry = snakemake(tmp_path, "--cores", "1", "-n")
        assert dry.returncode != 0 and re.search(
            rf"sample sheet 'samples\.tsv', row 1 \(sample 'gem'\), column bin_size: {said}\. Fix: bin_size: format "
            r"stereo only: the side of the square bins a GEM is summed into, in DNBs", dry.stdout + dry.stderr), dry.stdout[-2000:]


def test_a_truth_column_on_a_stereo_slide_says_a_gem_holds_no_annotation(tmp_path):
    """A GEM holds no annotation: a truth column given for it was refused as 'not in obs (columns: []). Fix: set
    the sample sheet's truth column to an existing obs column', of which there is none; now as a Visium
    folder's, with the call that reads the GEM at the slide's bins to add one."""
    from stcore.qc import QCParams, prepare_slide

    slide = tiny_slide()
    counts = slide.X.toarray().astype(int)
    gem = write_gem(tmp_path / "chip.gem", [(slide.var_names[g], 4 * (i % 8), 4 * (i // 8), c)
                                            for i, row in enumerate(counts) for g, c in enumerate(row) if c])
    with pytest.raises(InputError, match=r"chip\.gem': truth column 'layer' is not in obs: a stereo file holds no "
                                         r"annotation \(obs holds the reader's columns: \[\]\)\. Fix: to score against an "
                                         r"annotation, add it to obs and give the slide as an \.h5ad \(format h5ad\): "
                                         r"adata = stcore\.read\.stereo\('.*chip\.gem', bin_size=4\); adata\.obs\['layer'\]"):
        prepare_slide(str(gem), "stereo", QCParams(), truth="layer", n_clusters=2, bin_size=4)


def test_a_stereo_gem_given_as_an_h5ad_is_named_with_its_format(tmp_path):
    """A GEM with format h5ad was refused as 'not a readable .h5ad (OSError: ...). Fix: re-export the slide with
    anndata's write_h5ad'; now named as a GEM, with the format that reads it (gzipped or not, with SAW's header
    lines or only its column line)."""
    for name, header in (("chip.gem.gz", ("#FileFormat=GEMv0.1",)), ("chip.gem", ())):
        gem = write_gem(tmp_path / name, [("A", 1, 1, 2)], header=header)
        with pytest.raises(InputError, match=rf"{re.escape(name)}': a Stereo-seq GEM \(SAW's gene-by-DNB text file\), "
                                             r"not an \.h5ad\. Fix: set the sample sheet's format to stereo"):
            read_slide(gem, "h5ad")
