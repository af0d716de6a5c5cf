"""The reference GraphST package (PyPI GraphST 1.1.1) on one slide, phase by phase.

Run with the benchmark's own environment (benchmarks/.venv-ref), never with stcore's.
Phases follow what ``GraphST.GraphST(adata)`` does inside its constructor, called one by
one so that each can be timed: preprocess (its HVG + normalise + log + scale),
graph (its spatial neighbour graph, contrastive labels, features and its normalised
adjacency, built by the constructor), train (``train()``, 600 epochs by default) and
cluster.  Its ``clustering(method='mclust')`` needs R and rpy2; where they are missing the
decoder output ``obsm['emb']`` is reduced to 20 PCs as the package does (scikit-learn PCA,
random_state 42) and clustered with stcore's R-free EEE mixture; the JSON says which.
Peak RSS is the process's peak so far, read after each phase.

``--memory-limit-gb`` caps the process's address space (RLIMIT_AS) so that a slide too large
for the package ends in a MemoryError, recorded with the phase it happened in, instead of
in the kernel's out-of-memory killer:

    benchmarks/.venv-ref/bin/python benchmarks/reference_graphst.py --memory-limit-gb 22 \
        --slide benchmarks/.work/dag200k/results/simulated/sim200k.h5ad --truth domain --n-clusters 6
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from slide_args import add_slide_args

T_START = time.perf_counter()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_slide_args(ap)
    ap.add_argument("--memory-limit-gb", type=float, default=None,
                    help="cap the address space; a MemoryError is then reported with its phase")
    a = ap.parse_args(argv)
    if a.memory_limit_gb:
        limit = int(a.memory_limit_gb * 1024 ** 3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    phases: dict = {}

    def mark(name, t0):
        phases[name] = {"s": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}

    try:
        run_phases(a, mark, phases)
    except MemoryError as exc:
        failed_in = next((p for p in ("startup", "preprocess", "graph", "train", "cluster") if p not in phases), "")
        print("RESULT " + json.dumps({"failed": f"MemoryError in phase {failed_in}: {exc}",
                                      "memory_limit_gb": a.memory_limit_gb, "phases": phases,
                                      "total_s": time.perf_counter() - T_START,
                                      "peak_rss_mb": peak_rss_mb()}), flush=True)
        sys.exit(3)


def run_phases(a, mark, phases: dict) -> None:
    import torch
    torch.set_num_threads(a.threads)
    import numpy as np
    import scanpy as sc
    from GraphST import GraphST
    from GraphST.preprocess import add_contrastive_label, construct_interaction, fix_seed, get_feature, preprocess

    mark("startup", T_START)
    t = time.perf_counter()
    adata = sc.read_h5ad(a.slide)
    adata.var_names_make_unique()
    fix_seed(a.seed)
    preprocess(adata)
    mark("preprocess", t)
    t = time.perf_counter()
    construct_interaction(adata)
    add_contrastive_label(adata)
    get_feature(adata)
    model = GraphST.GraphST(adata, device=torch.device("cpu"), epochs=a.epochs, random_seed=a.seed)
    mark("graph", t)
    t = time.perf_counter()
    adata = model.train()
    mark("train", t)
    t = time.perf_counter()
    info = {"spots": int(adata.n_obs), "genes_used": int(adata.obsm["feat"].shape[1]), "epochs": a.epochs,
            "threads": a.threads, "seed": a.seed, "torch": torch.__version__}
    try:
        import rpy2  # noqa: F401
        from GraphST.utils import clustering
        clustering(adata, a.n_clusters, radius=50, method="mclust", refinement=False)
        labels = adata.obs["domain"].to_numpy()
        info["clustering"] = "GraphST clustering(method='mclust') with R mclust"
    except ImportError:
        from sklearn.decomposition import PCA
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from stcore.mclust import mclust
        pcs = PCA(n_components=20, random_state=42).fit_transform(adata.obsm["emb"].copy())
        labels = mclust(pcs, a.n_clusters, seed=a.seed)
        info["clustering"] = ("R/rpy2 not installed: PCA 20 of obsm['emb'] as GraphST does, then stcore's "
                              "R-free mclust EEE (stcore.mclust.mclust)")
    mark("cluster", t)
    if a.truth:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from stcore.cluster import refine
        from stcore.evaluate import domain_metrics
        truth = adata.obs[a.truth].to_numpy()
        info["ARI"] = domain_metrics(truth, labels)["ARI"]
        info["ARI_refined"] = domain_metrics(truth, refine(labels, np.asarray(adata.obsm["spatial"]), 50))["ARI"]
    info["s_per_epoch"] = phases["train"]["s"] / a.epochs
    info["phases"] = phases
    info["total_s"] = time.perf_counter() - T_START
    info["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
