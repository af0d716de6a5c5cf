"""Large simulated slides for the scale series, drawn a block of spots at a time.

Same generative model and parameters as ``stcore.simulate.simulate_slide`` (its layout,
domains and smooth fields are reused), but the negative-binomial counts are drawn in blocks
of spots, so that a 200,000-spot x 3,000-gene slide never holds the N x G float64 arrays that
the one-shot simulator builds (about 5 GB each at that size).  The random stream differs
from ``simulate_slide``'s, so the counts are not the same numbers, only the same model.  The gamma-Poisson mixture is drawn directly as the negative binomial it
equals (one draw per entry instead of two).
"""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from stcore.simulate import SimParams, _coords, _domains, _smooth_fields


def simulate_large(p: SimParams, block: int = 10_000) -> ad.AnnData:
    rng = np.random.default_rng(p.seed)
    xy = _coords(p, rng)
    n = xy.shape[0]
    dom = _domains(xy, p, rng)
    n_dom = p.n_layers + p.n_regions
    prop = rng.lognormal(0, 1.0, p.n_genes)
    prop /= prop.sum()
    genes = rng.permutation(p.n_genes)
    marker_eff = np.zeros((n_dom, p.n_genes))
    for d in range(n_dom):
        marker_eff[d, genes[d * p.markers_per_domain:(d + 1) * p.markers_per_domain]] = np.log(p.marker_fold)
    fields = _smooth_fields(xy, p, rng)
    field_eff = np.zeros((p.n_fields, p.n_genes))
    for f in range(p.n_fields):
        g = rng.choice(p.n_genes, size=min(p.field_genes, p.n_genes), replace=False)
        field_eff[f, g] += p.field_strength * rng.choice([-1, 1], size=g.size)
    depth = p.depth * rng.lognormal(0, 0.35, n)
    parts = []
    for start in range(0, n, block):
        sl = slice(start, min(start + block, n))
        log_eff = marker_eff[dom[sl]] + fields[sl] @ field_eff
        mu = depth[sl, None] * prop[None, :] * np.exp(log_eff)
        mu *= depth[sl, None] / mu.sum(1, keepdims=True)
        # gamma-Poisson mixture = negative binomial (size = dispersion, mean = mu), one draw per entry
        counts = rng.negative_binomial(p.dispersion, p.dispersion / (p.dispersion + mu))
        parts.append(sp.csr_matrix(counts.astype(np.float32)))
    letters = [f"D{d + 1}" for d in range(n_dom)]
    obs = pd.DataFrame({"domain": pd.Categorical([letters[d] for d in dom], categories=letters)},
                       index=[f"spot{i:07d}" for i in range(n)])
    var = pd.DataFrame(index=[f"gene{g:05d}" for g in range(p.n_genes)])
    adata = ad.AnnData(sp.vstack(parts, format="csr"), obs=obs, var=var)
    adata.obsm["spatial"] = xy
    return adata
