"""Snakemake step: the consensus of labelings of one slide (a method's seeds, several methods at one
seed: config `ensembles`, or every member of a combination at every seed), its metrics and its map."""
import pandas as pd

from stcore.consensus import consensus
from stcore.evaluate import label_rows, plot_domains
from stcore.group import SLIDE_KEY
from stcore.io import atomic_path, read_h5ad_elems, read_tsv, write_labels
from stcore.methods import trained_on
from stcore.provenance import record
from stcore.workflow import ANNOTATION_ELEMS, annotation_of, checked_truth, reference_domains, run_step


def main(sm):
    slide = read_h5ad_elems(sm.input.h5ad, *ANNOTATION_ELEMS, "uns/spatial", f"uns/{sm.params.truth}_colors",
                            *([f"uns/{sm.params.truth}"] if sm.params.truth else []))
    truth = checked_truth(slide, sm.params.truth, *annotation_of(sm))   # refused here too: reruns no qc
    obs = slide["obs"]
    seeds = [read_tsv(path, index_col="spot")["domain"].loc[obs.index].to_numpy() for path in sm.input.labels]
    labels = pd.Series(consensus(seeds), index=obs.index)
    # provenance as a run's row: versions, the machine that trained (the first labeling's), the
    # digest of every combined run's settings, the slide's input digest
    common = record(seed=None, config=dict(sm.params.settings), machine_info=trained_on(sm.input.npz) or None,
                    input_sha256=str(slide.get("uns/provenance", {}).get("input_sha256", "")))
    run = dict(sm.params.run)
    rows = [row | common for row in label_rows(obs, slide["obsm/spatial"], labels, truth, run)]
    members = f"{run['trained_by']} at " if "+" in run["trained_by"] else ""      # a combination of methods
    over = f"seeds {run['consensus_of'].replace(',', ', ')}" if run["seed"] == "consensus" else f"seed {run['seed']}"
    reference = reference_domains(sm, obs.index)          # a slide without an annotation: the colours its maps share
    plot_domains(slide["obsm/spatial"], labels.to_numpy(), truth,
                 title=f"{run['sample']}: {run['method']}, the vote over {members}{over}", path=sm.output.png,
                 slides=obs[SLIDE_KEY].to_numpy() if SLIDE_KEY in obs else None, spatial=slide.get("uns/spatial"),
                 truth_colors=slide.get(f"uns/{sm.params.truth}_colors"), reference=reference)
    write_labels(sm.output.labels, obs, labels.to_numpy())
    with atomic_path(sm.output.metrics) as tmp:
        pd.DataFrame(rows).to_csv(tmp, sep="\t", index=False)


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
