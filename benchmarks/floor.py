"""The floor of one training epoch against our measured epoch, on one slide.

floor: one dense product X W1 (N x G times G x d) plus its weight gradient Xᵀ dZ, the least
work any epoch of a model with a dense first layer must do.  With a separate decoder weight
W2 an epoch also needs X W2ᵀ and its gradient; ``floor_2d`` times that pair of products
(one product of width 2d forward, one backward).  ``epoch`` is fit_graph_model's own
per-epoch time over ``--epochs`` epochs (after one warm-up epoch).

    python benchmarks/floor.py --slide ../shared/data/DLPFC/151673.h5ad --threads 2
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def best_of(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def product_floor(x: torch.Tensor, d: int, repeats: int = 7) -> float:
    w = torch.randn(x.shape[1], d, requires_grad=True)
    g = torch.randn(x.shape[0], d)

    def step():
        y = x @ w
        (gw,) = torch.autograd.grad(y, w, g)
        return gw

    return best_of(step, repeats)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", help="an .h5ad slide, preprocessed as the pipeline does")
    ap.add_argument("--hvg", help="an already preprocessed hvg.h5ad (skips preprocessing)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--n-latent", type=int, default=64)
    ap.add_argument("--out", help="write the result as JSON here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    import anndata as ad
    import scipy.sparse as sp

    from stcore.graph import GraphParams, knn_graph
    from stcore.train import TrainParams, fit_graph_model

    if a.hvg:
        adata = ad.read_h5ad(a.hvg)
    else:
        from stcore.hvg import HVGParams, run_hvg
        from stcore.qc import QCParams, prepare_slide
        adata, _ = prepare_slide(a.slide, "h5ad", QCParams())
        adata = run_hvg(adata, HVGParams())
    x = adata.X
    xt = torch.from_numpy(x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float32))
    n, g = xt.shape
    floor = product_floor(xt, a.n_latent)
    floor_2d = product_floor(xt, 2 * a.n_latent)
    adj = knn_graph(np.asarray(adata.obsm["spatial"]), GraphParams())
    res = fit_graph_model(x, adj, TrainParams(epochs=a.epochs + 1, threads=a.threads, device="cpu",
                                               log_every=0))
    per_epoch = res.seconds / (a.epochs + 1)
    out = {"n_spots": n, "n_genes": g, "threads": a.threads, "floor_s": floor, "floor_2d_s": floor_2d,
           "epoch_s": per_epoch, "epoch_over_floor": per_epoch / floor,
           "epoch_over_floor_2d": per_epoch / floor_2d}
    print(json.dumps(out))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    sys.exit(main() and 0)
