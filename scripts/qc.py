"""Snakemake step: read a slide, check it, apply QC."""
import json

from stcore.io import atomic_path, write_h5ad
from stcore.qc import QCParams, prepare_slide
from stcore.workflow import run_step, sheet_row


def later_settings(sm, row) -> dict:
    """What the later steps will ask of the slide (its number of domains, the graph's k, the HVG
    flavour, its annotation column), checked here so that a slide that cannot meet them fails
    before any work.  Read from the config and the sheet, not from params: changing one reruns the
    steps that use it (cluster, graph, hvg; the truth column: evaluate, consensus, agreement, which
    check it again, and what follows them), not qc and everything after it."""
    return {"n_clusters": row["n_clusters"], "n_neighbors": sm.config["graph"]["n_neighbors"],
            "hvg_flavor": sm.config["hvg"]["flavor"], "truth": row.get("truth") or ""}


def bin_size(row):
    """A stereo slide's square bins (the sheet's bin_size; None: the reader's default), read from the sheet
    as the job's settings stamp holds it (stcore/plan/runs.py, job_settings), not from params: a rule's new
    param would rerun every slide's qc job."""
    return row.get("bin_size") or None


def main(sm):
    row = sheet_row(sm)
    adata, report = prepare_slide(
        row["path"], sm.params.format, QCParams(**sm.params.qc), values=sm.params.values,
        bin_size=bin_size(row), **later_settings(sm, row),
    )
    write_h5ad(adata, sm.output.h5ad)
    with atomic_path(sm.output.report) as tmp:
        tmp.write_text(json.dumps(report, indent=2))


if "snakemake" in globals():
    run_step(snakemake, main)  # noqa: F821
