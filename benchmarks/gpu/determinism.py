"""Is graphst's training on a GPU repeatable to the bit?  Trains twice at one seed on one slide.

    python benchmarks/gpu/determinism.py <slide.h5ad> [--deterministic] [--epochs 600]

Prints one JSON line: whether the two runs' embeddings are identical, the first epoch whose loss
differs, the largest embedding difference, and the seconds of each training.  ``--deterministic``
sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` and ``torch.use_deterministic_algorithms(True,
warn_only=True)`` first and lists every operation torch warns of as nondeterministic.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("slide")
p.add_argument("--deterministic", action="store_true")
p.add_argument("--epochs", type=int, default=600)
p.add_argument("--strict", action="store_true", help="with --deterministic: raise on a nondeterministic op")
p.add_argument("--probe", action="store_true", help="repeat each of the model's products 20 times instead")
a = p.parse_args()
if a.deterministic:
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from stcore.graph import spatial_adjacency  # noqa: E402
from stcore.hvg import HVGParams, run_hvg  # noqa: E402
from stcore.train import TrainParams, fit_graph_model  # noqa: E402

if a.deterministic:
    torch.use_deterministic_algorithms(True, warn_only=not a.strict)
slide = ad.read_h5ad(a.slide)
prepared = run_hvg(slide, HVGParams())
adj = spatial_adjacency(np.asarray(slide.obsm["spatial"], dtype=float))
dev = os.environ.get("DEVICE", "cuda")
if a.probe:
    from stcore.graph import gcn_norm
    from stcore.model import spmm, to_sparse_operator
    from stcore.train import _features

    g = torch.Generator(device="cpu").manual_seed(0)
    xt, _ = _features(prepared.X, torch.device(dev))
    a_hat = to_sparse_operator(gcn_norm(adj), dev)
    n, genes = prepared.X.shape
    w = torch.randn(genes, 128, generator=g).to(dev)
    h = torch.randn(n, 128, generator=g).to(dev).requires_grad_()
    perm = torch.randperm(n, generator=g).to(dev)
    probes = {"features @ W (sparse X)": lambda: spmm(xt, w),
              "features^T @ G": lambda: spmm(xt.csr_t, h.detach()) if hasattr(xt, "csr_t") else xt.T @ h.detach(),
              "A_hat @ H": lambda: spmm(a_hat, h.detach()),
              "A_hat^T @ H": lambda: spmm(a_hat.csr_t, h.detach()),
              "H[perm] backward": lambda: torch.autograd.grad((h[perm] * torch.arange(n, device=dev)[:, None]).sum(), h)[0],
              "H^T H": lambda: h.detach().T @ h.detach()}
    out = {}
    for name, f in probes.items():
        ref = f()
        out[name] = all(torch.equal(ref, f()) for _ in range(20))
    print(json.dumps({"probe_repeatable": out, "features": type(xt).__name__, "torch": torch.__version__}), flush=True)
    sys.exit(0)
runs = []
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(2):
        runs.append(fit_graph_model(prepared.X, adj, TrainParams(epochs=a.epochs, device=dev, seed=0)))
nondet = sorted({str(w.message).split("\n")[0][:200] for w in caught
                 if "deterministic" in str(w.message).lower()})
l0, l1 = runs[0].losses["total"].to_numpy(), runs[1].losses["total"].to_numpy()
differ = np.flatnonzero(l0 != l1)
print(json.dumps({"deterministic_mode": a.deterministic, "epochs": a.epochs,
                  "identical": bool(np.array_equal(runs[0].embedding, runs[1].embedding)),
                  "first_epoch_loss_differs": int(differ[0]) + 1 if differ.size else None,
                  "max_abs_embedding_diff": float(np.abs(runs[0].embedding - runs[1].embedding).max()),
                  "train_seconds": [round(r.seconds, 2) for r in runs],
                  "nondeterministic_ops": nondet, "torch": torch.__version__}), flush=True)
sys.exit(0)
