"""The notebook API on a GPU machine: ``stcore.tl.domains`` as a user calls it, on one labelled slide.

    python benchmarks/gpu/notebook.py <slide.h5ad> <out.jsonl> [--label ground_truth] [--n-clusters 7]

Each call prints (and appends to out.jsonl) one JSON line: which call, the device torch trained on,
the wall seconds of the whole call (HVG, graph, training, clustering), the GPU peak, and the ARI
against the slide's labels.  The calls:

- ``default``: ``tl.domains(adata, n_clusters=K, seed=range(3))`` with nothing else given, so
  ``train.device: auto`` picks the GPU; ARI of the consensus and of each seed.
- ``cuda:0``: seed 0 with ``train={'device': 'cuda:0'}``, then once more: the agreement (ARI) of
  the two labelings, since a GPU's sparse products sum in no fixed order (docs/guarantees.md).
- ``cpu``: seed 0 with ``train={'device': 'cpu'}`` and ``torch.set_num_threads(2)`` on the same machine: the ratio of
  the whole call's time, and the CPU's ARI beside the GPU's.
"""
from __future__ import annotations

import argparse
import json
import time

import anndata as ad
import torch
from sklearn.metrics import adjusted_rand_score

import stcore


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("slide")
    p.add_argument("out")
    p.add_argument("--label", default="ground_truth")
    p.add_argument("--n-clusters", type=int, default=7)
    a = p.parse_args()
    slide = ad.read_h5ad(a.slide)
    known = slide.obs[a.label].notna().to_numpy()
    truth = slide.obs[a.label].astype(str).to_numpy()[known]

    def call(name: str, **kw) -> ad.AnnData:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = stcore.tl.domains(slide, n_clusters=a.n_clusters, progress=False, copy=True, **kw)
        seconds = time.perf_counter() - t0
        labels = out.obs["domain"].astype(str).to_numpy()[known]
        row = {"call": name, "settings": {k: (list(v) if isinstance(v, range) else v) for k, v in kw.items()},
               "n_spots": slide.n_obs, "seconds": round(seconds, 2),
               "gpu_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None,
               "ari": round(adjusted_rand_score(truth, labels), 4)}
        if "domain_seeds" in out.obsm:
            seeds = out.obsm["domain_seeds"]
            row["ari_seeds"] = [round(adjusted_rand_score(truth, seeds.iloc[:, j].astype(str).to_numpy()[known]), 4)
                                for j in range(seeds.shape[1])]
        print(json.dumps(row), flush=True)
        with open(a.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        return out

    def cpu_call() -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            call("cpu, 2 threads", seed=0, train={"device": "cpu"})
        finally:
            torch.set_num_threads(threads)

    print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                      "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}), flush=True)
    call("default", seed=range(3))
    if not torch.cuda.is_available():
        print(json.dumps({"call": "cuda:0", "skipped": "torch sees no GPU here"}), flush=True)
        cpu_call()
        return
    first = call("cuda:0", seed=0, train={"device": "cuda:0"})
    again = call("cuda:0 again", seed=0, train={"device": "cuda:0"})
    rerun = {"call": "cuda:0 rerun agreement",
             "ari_between_runs": round(adjusted_rand_score(first.obs["domain"], again.obs["domain"]), 4),
             "identical": bool((first.obs["domain"].to_numpy() == again.obs["domain"].to_numpy()).all())}
    print(json.dumps(rerun), flush=True)
    with open(a.out, "a") as fh:
        fh.write(json.dumps(rerun) + "\n")
    cpu_call()


if __name__ == "__main__":
    main()
