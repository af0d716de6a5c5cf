"""The floor of one training epoch against our measured epoch, on one slide.

floor: one dense product X W1 (N x G times G x d) plus its weight gradient Xᵀ dZ, the least
work any epoch of a model with a dense first layer must do.  With a separate decoder weight
W2 an epoch also needs X W2ᵀ and its gradient; ``floor_2d`` times that pair of products
(one product of width 2d forward, one backward).

products_floor: every matrix product one epoch of the model does, forward and backward, each
timed alone with its operands in place and its output written into a buffer that exists
already (no allocation): the features' product (dense, or sparse over X's non-zeros, as the
model reads them) and its weight gradient; the sparse products with Â and the readout R and
their transposes; the discriminator's products and gradients; the Gram terms of the
reconstruction loss and their gradients (``epoch_products``).  What an epoch does beyond
these (elementwise passes, allocation, autograd) is the gap ``epoch_over_products_floor``
measures.  ``epoch`` is fit_graph_model's own per-epoch time over ``--epochs`` epochs (median,
after one warm-up epoch).

    python benchmarks/floor.py --slide ../shared/data/DLPFC/151673.h5ad --threads 2
    python benchmarks/floor.py --hvg hvg.h5ad --graph graph.npz --input-pcs 100   # as the DAG trains

``--rounds R`` alternates the two measurements R times and reports each round's ratio and their median:
on a shared host the products' time moves by 10-60 % between runs minutes apart, and a ratio of two
measurements taken at different times carries that drift.

``--order grid`` sorts the spots by position first (``grid_order``), the order of Visium HD's bins by
barcode; the sparse products with the graph then read neighbours that lie close in memory.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch


# The dense X W1 floor forms X densely: skipped above this size (2 GB; 1M x 3,000 would be 12 GB).
DENSE_FLOOR_MAX_BYTES = 2 * 1024 ** 3


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


def timed(fn, repeats: int = 5) -> float:
    """Median seconds of ``fn()`` after one warm-up call."""
    return best_of(fn, repeats)


def epoch_products(x, adj, d: int = 64, repeats: int = 5) -> dict:
    """Seconds of each product of one training epoch (see the module docstring), timed alone.

    x: the features as the model reads them (a dense float32 tensor, or a SparseOperator);
    adj: the 0/1 spatial adjacency (scipy sparse)."""
    from stcore.graph import gcn_norm, mean_operator
    from stcore.model import SparseOperator, to_sparse_operator

    n = adj.shape[0]
    g = x.shape[1]
    rng = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=rng)

    a_hat, r_op = to_sparse_operator(gcn_norm(adj)), to_sparse_operator(mean_operator(adj))
    w, b, gram = r(g, 2 * d), r(d, d), r(d, d)
    n2d, nd, n2d_b, nd_b, gw = r(n, 2 * d), r(n, d), torch.empty(n, 2 * d), torch.empty(n, d), torch.empty(g, 2 * d)
    pairs, pairs_b = r(2 * n, d), torch.empty(2 * n, d)
    w2 = r(d, g)
    gram_b, w2_b = torch.empty(d, d), torch.empty(d, g)

    def sparse(op, dense, out):
        return lambda: torch.addmm(out, op, dense, beta=0, out=out)

    if isinstance(x, SparseOperator):
        first = sparse(x.csr, w, n2d_b)                       # X [W1, W2ᵀ]
        first_grad = sparse(x.csr_t, n2d, gw)                 # Xᵀ G
    else:
        first = lambda: torch.mm(x, w, out=n2d_b)             # noqa: E731
        first_grad = lambda: torch.mm(x.T, n2d, out=gw)       # noqa: E731
    steps = {
        "features": (first, 1), "features_grad": (first_grad, 1),
        # Â [XW1, (XW1)[π]], Â Z, R [E, E~]; backward: the same shapes with the transposes.
        "adj_2d": (sparse(a_hat.csr, n2d, n2d_b), 2), "adj_d": (sparse(a_hat.csr, nd, nd_b), 2),
        "readout_2d": (sparse(r_op.csr, n2d, n2d_b), 2),
        # discriminator: [E, E~] B twice forward; twice the input gradient and twice B's gradient.
        "disc": (lambda: torch.mm(pairs, b, out=pairs_b), 4),
        "disc_weight_grad": (lambda: torch.mm(pairs.T, pairs, out=gram_b), 2),
        # reconstruction: UᵀU and W2 W2ᵀ; backward U (W2 W2ᵀ) and (UᵀU) W2.
        "gram_u": (lambda: torch.mm(nd.T, nd, out=gram_b), 1),
        "gram_w": (lambda: torch.mm(w2, w2.T, out=gram_b), 1),
        "gram_u_grad": (lambda: torch.mm(nd, gram, out=nd_b), 1),
        "gram_w_grad": (lambda: torch.mm(gram, w2, out=w2_b), 1),
    }
    out = {}
    for name, (fn, count) in steps.items():
        out[name] = count * timed(fn, repeats)
    out["total"] = sum(out.values())
    return out


def grid_order(coords: np.ndarray, per_cell: int = 64) -> np.ndarray:
    """The spots sorted by position: row by row over square cells holding about ``per_cell`` spots
    each, the file's order within a cell.  Visium HD names its bins by array row and column, so a
    matrix in barcode order is in position order; the simulated slides are drawn in random order, so
    their neighbours lie scattered in memory."""
    n = len(coords)
    side = np.ptp(coords, axis=0).max() / max(np.sqrt(n / per_cell), 1.0)
    cell = np.floor((coords - coords.min(axis=0)) / max(side, 1e-12)).astype(np.int64)
    return np.lexsort((cell[:, 0], cell[:, 1]))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", help="an .h5ad slide, preprocessed as the pipeline does")
    ap.add_argument("--hvg", help="an already preprocessed hvg.h5ad (skips preprocessing)")
    ap.add_argument("--graph", help="the graph.npz of the slide (default: built as the pipeline builds it)")
    ap.add_argument("--input-pcs", type=int, help="train on this many PCA scores, as train.input_pcs does")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1,
                    help="time the products and then --epochs epochs this many times, alternating, so that each "
                         "ratio pairs two measurements under the same load (the host's speed drifts between runs)")
    ap.add_argument("--n-latent", type=int, default=64)
    ap.add_argument("--order", choices=["stored", "grid"], default="stored",
                    help="the spots in the file's order, or sorted by position (grid_order) first")
    ap.add_argument("--out", help="write the result as JSON here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    import scipy.sparse as sp

    from stcore.graph import GraphParams, spatial_adjacency
    from stcore.train import SPARSE_FEATURES_MAX_DENSITY, TrainParams, fit_graph_model

    if a.hvg:
        from stcore.io import read_h5ad_elems

        parts = read_h5ad_elems(a.hvg, "X", "obsm/spatial")     # not the counts layer
        x, coords = parts["X"], parts["obsm/spatial"]
    else:
        from stcore.hvg import HVGParams, run_hvg
        from stcore.qc import QCParams, prepare_slide
        adata, _ = prepare_slide(a.slide, "h5ad", QCParams())
        adata = run_hvg(adata, HVGParams())
        x, coords = adata.X, adata.obsm["spatial"]
        del adata
    adj = sp.load_npz(a.graph) if a.graph else spatial_adjacency(np.asarray(coords), GraphParams())
    if a.order == "grid":
        order = grid_order(np.asarray(coords))
        x, adj = x[order], sp.csr_matrix(adj)[order][:, order]
    from stcore.train import _features, input_pca

    if a.input_pcs:
        x = input_pca(x, a.input_pcs)
    n, g = x.shape
    floor = floor_2d = None
    if n * g * 4 <= DENSE_FLOOR_MAX_BYTES:       # the dense floor needs X dense
        xt = torch.from_numpy(x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float32))
        floor = product_floor(xt, a.n_latent)
        floor_2d = product_floor(xt, 2 * a.n_latent)
        del xt
    rounds = []
    for _ in range(a.rounds):            # products then epochs, again and again: pairs on the same load
        model_x, _ = _features(x, torch.device("cpu"))       # the features as training reads them
        products = epoch_products(model_x, adj, a.n_latent)
        del model_x
        res = fit_graph_model(x, adj, TrainParams(epochs=a.epochs + 1, threads=a.threads, device="cpu",
                                                   log_every=0))
        rounds.append({"products_s": products["total"], "epoch_s": float(np.median(res.epoch_seconds[1:]))})
        rounds[-1]["epoch_over_products"] = rounds[-1]["epoch_s"] / rounds[-1]["products_s"]
        print(json.dumps(rounds[-1]), flush=True)
    per_epoch = float(np.median([r["epoch_s"] for r in rounds]))
    products_s = float(np.median([r["products_s"] for r in rounds]))
    out = {"n_spots": n, "n_genes": g, "threads": a.threads, "input_pcs": a.input_pcs, "order": a.order,
           "sparse_features": bool(sp.issparse(x) and not a.input_pcs
                                   and x.nnz <= SPARSE_FEATURES_MAX_DENSITY * n * g),
           "floor_s": floor, "floor_2d_s": floor_2d,
           "products_floor_s": products_s, "products": products,
           "epoch_s": per_epoch, "epoch_over_floor": floor and per_epoch / floor,
           "epoch_over_floor_2d": floor_2d and per_epoch / floor_2d,
           "epoch_over_products_floor": per_epoch / products_s,
           "rounds": rounds,
           "epoch_over_products_median_of_rounds": float(np.median([r["epoch_over_products"] for r in rounds])),
           "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "")}
    print(json.dumps(out))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    sys.exit(main() and 0)
