"""One step of our pipeline on one slide, in its own process, for benchmarks/run.py.

Each call runs one step with the pipeline's defaults, writes its output under --work and
prints one JSON line: the step's own seconds (after imports) and the process's peak RSS
(``resource.getrusage``).  Steps: preprocess (read, QC, HVG, transform), graph (spatial kNN
graph), train (the graph model), cluster (PCA of the reconstruction + EEE mixture, and
the ARI against the slide's truth column).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("step", choices=["preprocess", "graph", "train", "cluster"])
    ap.add_argument("--slide", help="input .h5ad (preprocess)")
    ap.add_argument("--work", required=True, help="folder for the step outputs")
    ap.add_argument("--truth", default="ground_truth")
    ap.add_argument("--n-clusters", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=41)
    ap.add_argument("--input-pcs", type=int, default=None)
    ap.add_argument("--n-top-genes", type=int, default=3000)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="train on this device")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    import numpy as np
    import anndata as ad
    import scipy.sparse as sp

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    info: dict = {"step": a.step}
    t0 = time.perf_counter()
    if a.step == "preprocess":
        from stcore.hvg import HVGParams, run_hvg
        from stcore.io import write_h5ad
        from stcore.qc import QCParams, prepare_slide
        truth = a.truth if a.truth else ""
        adata, _ = prepare_slide(a.slide, "h5ad", QCParams(), truth=truth, n_clusters=a.n_clusters)
        adata = run_hvg(adata, HVGParams(n_top_genes=a.n_top_genes))
        write_h5ad(adata, work / "hvg.h5ad")
        info |= {"spots": adata.n_obs, "genes": adata.n_vars}
    elif a.step == "graph":
        from stcore.graph import GraphParams, spatial_adjacency
        coords = ad.read_h5ad(work / "hvg.h5ad", backed="r").obsm["spatial"][:]
        adj = spatial_adjacency(np.asarray(coords), GraphParams())
        sp.save_npz(work / "graph.npz", adj)
        info["edges"] = int(adj.nnz // 2)
    elif a.step == "train":
        from stcore.train import TrainParams, fit_graph_model
        x = ad.read_h5ad(work / "hvg.h5ad").X
        adj = sp.load_npz(work / "graph.npz")
        res = fit_graph_model(x, adj, TrainParams(epochs=a.epochs, seed=a.seed, threads=a.threads, device=a.device,
                                                  log_every=0, input_pcs=a.input_pcs))
        from stcore.methods import MethodResult
        MethodResult(embedding=res.embedding, decoded=res.decoded, decoder_weight=res.decoder_weight,
                     seconds=res.seconds, device=res.device).save(work / "train.npz")
        steady = res.epoch_seconds[1:] if len(res.epoch_seconds) > 1 else res.epoch_seconds
        info |= {"epochs": a.epochs, "train_loop_s": res.seconds, "s_per_epoch": res.seconds / a.epochs,
                 "s_first_epoch": float(res.epoch_seconds[0]), "s_per_epoch_steady": float(np.median(steady)),
                 "device": res.device}
        if res.device.startswith("cuda"):
            info |= {"gpu": torch.cuda.get_device_name(), "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20}
    else:
        from stcore.cluster import ClusterParams, cluster_features, refine, run_cluster
        from stcore.evaluate import domain_metrics
        from stcore.methods import MethodResult
        out = MethodResult.load(work / "train.npz")
        slide = ad.read_h5ad(work / "hvg.h5ad", backed="r")
        coords = np.asarray(slide.obsm["spatial"][:])
        params = ClusterParams(seed=a.seed)
        feats = cluster_features(out.embedding, out.decoded, out.decoder_weight, params)
        labels = run_cluster(feats, coords, a.n_clusters, params)
        info["cluster_only_s"] = time.perf_counter() - t0
        if a.truth:
            truth = slide.obs[a.truth].to_numpy()
            info["ARI"] = domain_metrics(truth, labels)["ARI"]
            info["ARI_refined"] = domain_metrics(truth, refine(labels, coords, 50))["ARI"]
        np.save(work / "labels.npy", labels)
    info["step_s"] = time.perf_counter() - t0
    info["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(info), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
