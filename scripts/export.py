"""Snakemake step: one domains.h5ad per run, per consensus of a method's seeds, per combination of
methods at a seed (config `ensembles`) and per combination's one answer over its seeds, for scanpy
and squidpy; for a slide read from a SpatialData store, those domains as a store too (domains.zarr)."""
import json
from pathlib import Path

import anndata as ad
import scipy.sparse as sp

from stcore.cluster import ClusterParams, n_pcs_used, used_pcs
from stcore.evaluate import mean_pairwise_ari
from stcore.export import combined_choice, domains_adata, domains_spatialdata, run_metrics
from stcore.io import read_tsv, write_h5ad
from stcore.methods import MethodResult, recorded_train
from stcore.workflow import annotation_of, group_truth, reference_domains, run_step, sheet_row


def clustered(sm, result):
    """The clustering settings as recorded: ``n_pcs`` the components clustered, with ``n_pcs_asked``
    where the features had fewer (:func:`stcore.cluster.used_pcs`); a combination of methods: each
    method's, from its own run's output (``member_npz``)."""
    if hasattr(sm.params, "members"):
        return {m: used_pcs(settings, n_pcs_used(MethodResult.load(npz), ClusterParams(**settings)))
                for (m, settings), npz in zip(sm.params.cluster.items(), sm.input.member_npz)}
    settings = dict(sm.params.cluster)
    return used_pcs(settings, n_pcs_used(result, ClusterParams(**settings)))


def main(sm):
    if sm.rule == "export_spatialdata":
        domains_spatialdata(sheet_row(sm)["path"], ad.read_h5ad(sm.input.h5ad), sm.output.zarr)    # the store
        return
    counts = ad.read_h5ad(sm.input.qc)
    slides, group = annotation_of(sm)
    if sm.params.truth and slides:        # a group's annotation: read from its slides' qc.h5ad
        counts.obs[sm.params.truth] = group_truth(counts.obs, slides, group)
    labels = read_tsv(sm.input.labels, index_col="spot")["domain"].loc[counts.obs_names]
    result = MethodResult.load(sm.input.npz)
    metrics = run_metrics(read_tsv(sm.input.metrics))          # a group's run: a row per slide
    # what each training read (a combination of methods, `members`: per method, as its clustering settings)
    def read(t):
        return recorded_train(t["model"], dict(t["settings"]))

    train = {m: read(t) for m, t in sm.params.train.items()} if hasattr(sm.params, "members") else read(sm.params.train)
    info = dict(sm.params.run) | {"train": train, "cluster": clustered(sm, result), "metrics": metrics}
    if hasattr(sm.input, "n_clusters"):       # a run: how its number of domains was set (the curve of auto)
        info["n_clusters"] = json.loads(Path(sm.input.n_clusters).read_text())
    if hasattr(sm.input, "run_n_clusters"):   # combined runs: the first's record and, with auto, every run's choice
        info["n_clusters"] = combined_choice([json.loads(Path(p).read_text()) for p in sm.input.run_n_clusters],
                                             list(sm.params.run_names))
    seed_labels = None
    if hasattr(sm.input, "seed_labels"):      # the consensus of the seeds: each seed's labels beside it
        seed_labels = {seed: read_tsv(path, index_col="spot")["domain"].loc[counts.obs_names].to_numpy()
                       for seed, path in zip(sm.params.seeds, sm.input.seed_labels)}
        info |= {"seed_ARI": mean_pairwise_ari(list(seed_labels.values())),
                 "embedding_of_seed": int(sm.params.seeds[0])}
    method_labels = None
    if hasattr(sm.input, "member_labels"):    # a combination of methods: each method's labels beside it
        method_labels = {m: read_tsv(path, index_col="spot")["domain"].loc[counts.obs_names].to_numpy()
                         for m, path in zip(sm.params.members, sm.input.member_labels)}
        info |= {"methods_ARI": mean_pairwise_ari(list(method_labels.values())),
                 "embedding_of": sm.params.members[0]}
    reference = reference_domains(sm, counts.obs_names)          # a slide without an annotation: the colours its maps share
    # the embedding kept is the first member's (a combination: info's embedding_of), under that member's name
    embedded = sm.params.members[0] if hasattr(sm.params, "members") else sm.params.run["method"]
    out = domains_adata(counts, labels.to_numpy(), result.embedding, sp.load_npz(sm.input.graph),
                        method=embedded, info=info, seed_labels=seed_labels,
                        method_labels=method_labels, truth=sm.params.truth or None, values=sm.params.values,
                        graph=json.loads(Path(sm.input.graph_params).read_text()), reference=reference)
    write_h5ad(out, sm.output.h5ad)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
