"""Snakemake step: fit one method (from the registry, stcore.methods) for one slide and seed."""
import numpy as np
import scipy.sparse as sp

from stcore.io import atomic_path, read_h5ad_elems
from stcore.methods import fit, reads_counts
from stcore.registry import facts, train_log_settings
from stcore.workflow import run_step


def log_settings(sm) -> dict:
    """What the method's fit logs (train.log_every), read from the config, not from params: changing
    it changes no result, so it reruns no training (stcore/registry.py, log_keys); a method that logs
    nothing on request (the baseline, the peers) reads none."""
    if not facts(sm.params.model).log_keys:
        return {}
    spec = sm.config["methods"][sm.wildcards.method] or {}
    return train_log_settings(sm.params.model, dict(sm.config["train"], **(spec.get("train") or {})))


def main(sm):
    keys = ["X", "obsm/spatial"] + (["layers/counts", "uns/hvg"] if reads_counts(sm.params.model) else [])
    slide = read_h5ad_elems(sm.input.h5ad, *keys)      # not the whole AnnData: at 10^6 spots
    graph = getattr(sm.input, "graph", None) or []       # (the counts alone are ~1 GB)
    graph = [graph] if isinstance(graph, str) else list(graph)
    adj = sp.load_npz(graph[0]) if graph else None      # a model that reads no graph is given none
    train = dict(sm.params.train, threads=sm.threads, **log_settings(sm))
    n_clusters = train.pop("n_clusters", None)     # given to the peers only (rules/common.smk)
    result = fit(sm.params.model, slide.pop("X"), adj, np.asarray(slide.pop("obsm/spatial")), train,
                 sm.params.seed, counts=slide.pop("layers/counts", None), n_clusters=n_clusters,
                 values=str(slide.get("uns/hvg", {}).get("values", "counts")))
    result.save(sm.output.npz)
    with atomic_path(sm.output.losses) as tmp:
        result.losses.to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
