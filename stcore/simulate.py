"""Synthetic slides with known spatial domains.

Domains are layered bands with wavy boundaries (like cortical layers) plus round regions
laid over them.  Counts are negative binomial: each domain raises its own marker genes,
each spot has its own library size, and a few spatially smooth random fields (which do
not follow the domains) move other genes up and down, as tissue gradients do.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .plan.runs import SIMULATE_BLOCK, SIMULATED_DEPTH_SPREAD, SIMULATED_GENE_SPREAD, SIMULATED_SIZE, hex_side

__all__ = ["Layout", "SimParams", "simulate_slide", "write_10x_h5", "write_visium"]


class Layout(str, Enum):
    HEX = "hex"          # Visium-like hexagonal grid
    SCATTER = "scatter"  # cells at random positions (STARmap, MERFISH-like)


@dataclass(frozen=True)
class SimParams:
    """n_spots: about this many spots.  layout: hex | scatter.  n_layers: bands.
    n_regions: round regions over the bands.  n_genes: genes.  markers_per_domain: genes
    raised in each domain, by ``marker_fold`` times.  depth: mean counts per spot.
    dispersion: negative binomial size (smaller = noisier).  n_fields / field_genes /
    field_scale / field_strength: smooth nuisance fields, genes each one moves, their length
    scale as a share of the slide width, their sd on the log scale.  seed: random state."""

    n_spots: int = SIMULATED_SIZE["n_spots"]
    layout: Layout = Layout.HEX
    n_layers: int = 5
    n_regions: int = 1
    n_genes: int = SIMULATED_SIZE["n_genes"]
    markers_per_domain: int = 300
    marker_fold: float = 1.3
    depth: float = SIMULATED_SIZE["depth"]
    dispersion: float = SIMULATED_SIZE["dispersion"]
    n_fields: int = 3
    field_genes: int = 200
    field_scale: float = 0.2
    field_strength: float = 0.15
    seed: int = 0
    tissue_seed: int | None = None


def _coords(p: SimParams, rng: np.random.Generator) -> np.ndarray:
    if Layout(p.layout) is Layout.HEX:
        side = hex_side(p.n_spots)
        ii, jj = np.meshgrid(np.arange(side), np.arange(side))
        x = ii + 0.5 * (jj % 2)
        y = jj * np.sqrt(3) / 2
        xy = np.column_stack([x.ravel(), y.ravel()]) * 100.0
    else:
        xy = rng.uniform(0, 100.0 * np.sqrt(p.n_spots), size=(p.n_spots, 2))
    return xy


def _domains(xy: np.ndarray, p: SimParams, rng: np.random.Generator) -> np.ndarray:
    lo, span = xy.min(0), np.ptp(xy, 0)
    u = (xy - lo) / np.where(span > 0, span, 1)
    warp = 0.06 * np.sin(2 * np.pi * (u[:, 0] * rng.uniform(0.6, 1.4) + rng.uniform()))
    layer = np.clip(((u[:, 1] + warp) * p.n_layers).astype(int), 0, p.n_layers - 1)
    dom = layer.copy()
    for r in range(p.n_regions):
        centre = rng.uniform(0.25, 0.75, size=2)
        radius = rng.uniform(0.1, 0.16)
        dom[np.hypot(*(u - centre).T) < radius] = p.n_layers + r
    return dom


def _smooth_fields(xy: np.ndarray, p: SimParams, rng: np.random.Generator) -> np.ndarray:
    """(N, n_fields) unit-variance random fields with length scale ``field_scale``."""
    span = np.ptp(xy, 0).max()
    n_feat = 64
    out = np.zeros((xy.shape[0], p.n_fields))
    for f in range(p.n_fields):
        w = rng.normal(0, 1 / (p.field_scale * span), size=(n_feat, 2))
        b = rng.uniform(0, 2 * np.pi, n_feat)
        v = np.cos(xy @ w.T + b).sum(1)
        out[:, f] = (v - v.mean()) / (v.std() + 1e-12)
    return out


def simulate_slide(p: SimParams = SimParams(), *, block: int = SIMULATE_BLOCK) -> ad.AnnData:
    """A slide with integer counts in ``X``, coordinates in ``obsm['spatial']`` and the
    true domain in ``obs['domain']``.

    Counts are drawn ``block`` spots at a time as negative binomial (size ``dispersion``,
    mean ``mu``; the gamma-Poisson mixture it equals), so memory stays bounded by the
    sparse result even for 200,000-spot slides.
    """
    rng = np.random.default_rng(p.seed)
    xy = _coords(p, rng)
    n = xy.shape[0]
    dom = _domains(xy, p, rng)
    n_dom = p.n_layers + p.n_regions
    programs = rng if p.tissue_seed is None else np.random.default_rng(p.tissue_seed)
    prop = programs.lognormal(0, SIMULATED_GENE_SPREAD, p.n_genes)
    prop /= prop.sum()
    genes = programs.permutation(p.n_genes)
    marker_eff = np.zeros((n_dom, p.n_genes))
    for d in range(n_dom):
        marker_eff[d, genes[d * p.markers_per_domain:(d + 1) * p.markers_per_domain]] = np.log(p.marker_fold)
    fields = _smooth_fields(xy, p, rng)
    field_eff = np.zeros((p.n_fields, p.n_genes))
    for f in range(p.n_fields):
        g = rng.choice(p.n_genes, size=min(p.field_genes, p.n_genes), replace=False)
        field_eff[f, g] = p.field_strength * rng.choice([-1, 1], size=g.size)
    depth = p.depth * rng.lognormal(0, SIMULATED_DEPTH_SPREAD, n)
    parts = []
    for start in range(0, n, block):
        sl = slice(start, min(start + block, n))
        mu = prop[None, :] * np.exp(marker_eff[dom[sl]] + fields[sl] @ field_eff)
        mu *= depth[sl, None] / mu.sum(1, keepdims=True)
        counts = rng.negative_binomial(p.dispersion, p.dispersion / (p.dispersion + mu))
        parts.append(sp.csr_matrix(counts.astype(np.float32)))
    letters = [f"D{d + 1}" for d in range(n_dom)]
    obs = pd.DataFrame({"domain": pd.Categorical([letters[d] for d in dom], categories=letters)},
                       index=[f"spot{i:07d}" for i in range(n)])
    var = pd.DataFrame(index=[f"gene{g:05d}" for g in range(p.n_genes)])
    adata = ad.AnnData(sp.vstack(parts, format="csr"), obs=obs, var=var)
    adata.obsm["spatial"] = xy
    adata.uns["simulation"] = {k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(p).items()}
    return adata


def write_10x_h5(adata: ad.AnnData, path: str | os.PathLike, *, feature_types: list[str] | None = None,
                 library_id: str | None = None) -> None:
    """``adata``'s integer counts as a 10x HDF5 matrix (v3 layout: genes x barcodes CSC, a
    ``features`` group), as Space Ranger and Xenium write it; ``feature_types`` per gene (default
    all 'Gene Expression'), ``library_id`` in the file's ``library_ids`` attribute."""
    import h5py

    x = sp.csc_matrix(sp.csr_matrix(adata.X).T.astype(np.int32))      # genes x barcodes
    with h5py.File(path, "w") as f:
        if library_id is not None:
            f.attrs["library_ids"] = np.array([library_id.encode()])
        m = f.create_group("matrix")
        m["barcodes"] = np.array(list(adata.obs_names), dtype="S")
        m["data"], m["indices"], m["indptr"] = x.data, x.indices, x.indptr
        m["shape"] = np.array(x.shape, dtype=np.int32)
        feats = m.create_group("features")
        feats["id"] = np.array([f"ENSG{i:05d}" for i in range(adata.n_vars)], dtype="S")
        feats["name"] = np.array(list(adata.var_names), dtype="S")
        feats["feature_type"] = np.array(feature_types or ["Gene Expression"] * adata.n_vars, dtype="S")
        feats["genome"] = np.array(["GRCh38"] * adata.n_vars, dtype="S")
        feats["_all_tag_keys"] = np.array([b"genome"])


def write_visium(adata: ad.AnnData, outs: str | os.PathLike, *, library_id: str | None = None,
                 positions: str = "tissue_positions.csv") -> Path:
    """``adata`` (integer counts in ``X``, coordinates in ``obsm['spatial']``) as a Space Ranger
    ``outs`` folder, to try the Visium reader (:func:`stcore.read.visium`) without data:
    ``filtered_feature_bc_matrix.h5`` (10x HDF5, v3 layout: genes x barcodes CSC; ``library_id``
    in its ``library_ids`` attribute, as Space Ranger records it) and ``spatial/`` with the
    positions (``tissue_positions.csv`` with a header, Space Ranger 2.0's; or
    ``tissue_positions_list.csv`` without, 1.x's; coordinates as full-resolution pixels), the
    scale factors (with the spot diameter: 55 % of the distance between neighbouring spots, as
    Visium's 55 um spots 100 um apart) and the hires and lowres tissue images, plain pink where
    the spots are on white (a simulated tissue has no histology), so that ``scanpy.pl.spatial``
    draws the slide as it draws a real one.  Returns ``outs``."""
    outs = Path(outs)
    outs.mkdir(parents=True, exist_ok=True)
    write_10x_h5(adata, outs / "filtered_feature_bc_matrix.h5", library_id=library_id)
    spatial = outs / "spatial"
    spatial.mkdir(exist_ok=True)
    xy = np.asarray(adata.obsm["spatial"])
    pd.DataFrame({"barcode": list(adata.obs_names), "in_tissue": np.ones(adata.n_obs, int),
                  "array_row": np.arange(adata.n_obs), "array_col": np.arange(adata.n_obs),
                  "pxl_row_in_fullres": xy[:, 1].round().astype(int),
                  "pxl_col_in_fullres": xy[:, 0].round().astype(int)}
                 ).to_csv(spatial / positions, index=False, header=positions == "tissue_positions.csv")
    pitch = _spot_pitch(xy)
    scale = {"spot_diameter_fullres": 0.55 * pitch, "fiducial_diameter_fullres": 0.9 * pitch}
    extent = float(np.max(xy)) + pitch if len(xy) else 1.0
    for key, side in (("hires", 2000), ("lowres", 600)):      # Space Ranger's longest sides
        scale[f"tissue_{key}_scalef"] = side / extent
        _tissue_image(xy * scale[f"tissue_{key}_scalef"], side, 0.75 * pitch * scale[f"tissue_{key}_scalef"],
                      spatial / f"tissue_{key}_image.png")
    (spatial / "scalefactors_json.json").write_text(json.dumps(scale))
    return outs


def _spot_pitch(xy: np.ndarray) -> float:
    """The median distance between a spot and its nearest neighbour (1 for fewer than two spots)."""
    from scipy.spatial import cKDTree

    if len(xy) < 2:
        return 1.0
    dist, _ = cKDTree(xy).query(xy, k=2)
    pitch = float(np.median(dist[:, 1]))
    return pitch if pitch > 0 else 1.0


def _tissue_image(xy: np.ndarray, side: int, radius: float, path: Path) -> None:
    """A ``side`` x ``side`` RGB image: white, pink within ``radius`` pixels of a spot at ``xy``
    (x, y pixels)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (side, side), (248, 248, 248))
    draw = ImageDraw.Draw(image)
    r = max(1.0, radius)
    for x, y in xy:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(236, 196, 214))
    image.save(path)
