"""Snakemake step: every per-run metric (computed here once), and the domain map.  A group of
slides gets one row per slide (its ARI and spatial metrics on that slide) with the group's
integration metrics on each."""
import pandas as pd

from stcore.cluster import ClusterParams, cluster_features, correct_slides
from stcore.evaluate import expression_reconstruction_r, label_rows, plot_domains
from stcore.group import SLIDE_KEY, slide_codes
from stcore.io import atomic_path, read_h5ad_elems, read_tsv
from stcore.methods import MethodResult
from stcore.provenance import record
from stcore.workflow import ANNOTATION_ELEMS, annotation_of, checked_truth, reference_domains, run_step


def main(sm):
    slide = read_h5ad_elems(sm.input.h5ad, "X", *ANNOTATION_ELEMS, "uns/spatial", f"uns/{sm.params.truth}_colors",
                            *([f"uns/{sm.params.truth}"] if sm.params.truth else []))
    truth = checked_truth(slide, sm.params.truth, *annotation_of(sm))   # refused here too: reruns no qc
    obs, coords, x = slide["obs"], slide["obsm/spatial"], slide["X"]
    labels = read_tsv(sm.input.labels, index_col="spot")["domain"].loc[obs.index]
    result = MethodResult.load(sm.input.npz)
    run = dict(sm.params.run)
    prov, spatial = slide.get("uns/provenance", {}), slide.get("uns/spatial")
    truth_colors = slide.get(f"uns/{sm.params.truth}_colors")
    common = {"genes": x.shape[1], "recon_r": expression_reconstruction_r(x, result.decoded, result.decoder_weight)}
    del slide, x
    common |= record(seed=run["seed"], config=dict(sm.params.settings), input_sha256=str(prov.get("input_sha256", "")),
                     machine_info=result.machine or None)
    mixed = None
    if SLIDE_KEY in obs:        # a group: how the slides mix in the features the clustering used
        params = ClusterParams(**sm.params.cluster, seed=run["seed"])
        mixed = cluster_features(result.embedding, result.decoded, result.decoder_weight, params)
        if params.correct == "harmony":
            mixed = correct_slides(mixed, slide_codes(obs), params.seed)
    rows = [row | common for row in label_rows(obs, coords, labels, truth, run | {"embedding": mixed})]
    reference = reference_domains(sm, obs.index)          # a slide without an annotation: the colours its maps share
    plot_domains(coords, labels.to_numpy(), truth,
                 title=f"{run['sample']}: {run['method']}, seed {run['seed']}", path=sm.output.png,
                 slides=obs[SLIDE_KEY].to_numpy() if SLIDE_KEY in obs else None, features=mixed,
                 spatial=spatial, truth_colors=truth_colors, reference=reference)
    with atomic_path(sm.output.metrics) as tmp:
        pd.DataFrame(rows).to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
