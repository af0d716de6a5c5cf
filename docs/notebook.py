"""stcore in a notebook, as a script: a Visium folder through the notebook API, then squidpy.

    python docs/notebook.py       # a simulated slide as a Visium folder: ARI 0.83; 32 s wall, 46 CPU s (2-vCPU AMD EPYC, quiet)
    python docs/notebook.py --visium path/to/outs --n-clusters 7 --annotation layers.csv --epochs 600

Each cell (``# %%``) runs in Jupyter / VS Code as it stands.  The steps:

1. ``stcore.read.visium``: a Space Ranger ``outs`` folder (raw counts in ``X``, coordinates in
   ``obsm['spatial']``, the library id, chemistry and software version in ``uns['spatial']``).
   Without ``--visium``, a simulated slide with three known layers is first written as one
   (``stcore.simulate.write_visium``), with its layers as the annotation;
2. an annotation, if any (``--annotation``: a CSV of barcode, label), as ``obs['annotation']``;
3. ``stcore.gr.spatial_graph``: the spatial graph under squidpy's keys;
4. ``stcore.tl.domains`` with a progress bar over the epochs, the domains in ``obs['domain']``;
5. ``stcore.pl.domains``: the found domains beside the annotation, colours matched, ARI and NMI;
6. ``squidpy.gr.nhood_enrichment`` on the stored graph, with no extra step (squidpy comes with
   the ``cellcharter`` extra: ``pip install -e '.[cellcharter]'``; without it this step is
   skipped with a message).
"""
# %%
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib
import pandas as pd

import stcore
from stcore.simulate import SimParams, simulate_slide, write_visium


def demo_folder(out: Path, spots: int, genes: int) -> tuple[Path, Path]:
    """A simulated slide with three layers as a Space Ranger folder, and its layers as a CSV."""
    slide = simulate_slide(SimParams(n_spots=spots, n_genes=genes, markers_per_domain=genes // 10,
                                     n_layers=3, n_regions=0, seed=1))
    outs = write_visium(slide, out / "demo_visium" / "outs", library_id="demo_slide")
    slide.obs["domain"].rename("layer").to_csv(out / "demo_visium" / "layers.csv", index_label="barcode")
    return outs, out / "demo_visium" / "layers.csv"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visium", type=Path, help="a Space Ranger outs folder (default: a simulated one)")
    parser.add_argument("--annotation", type=Path, help="CSV of barcode, label: the annotation to score against")
    parser.add_argument("--n-clusters", type=int, default=3, help="number of domains (default: %(default)s)")
    parser.add_argument("--spots", type=int, default=2000, help="spots of the simulated slide (default: %(default)s)")
    parser.add_argument("--genes", type=int, default=3000, help="genes of the simulated slide (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=600,
                        help="training epochs (default: %(default)s); fewer give other domains: docs/notebook.md")
    parser.add_argument("--out", type=Path, default=Path("figures"),
                        help="folder of the figure and, without --visium, of the simulated slide's folder "
                             "(default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not hasattr(sys, "ps1") and "ipykernel" not in sys.modules:
        matplotlib.use("Agg")           # run as a script: figures go to files
    if args.visium is None:
        args.visium, args.annotation = demo_folder(args.out, args.spots, args.genes)

    # %% Read the Visium folder.
    adata = stcore.read.visium(args.visium)
    library_id = next(iter(adata.uns["spatial"]))
    print(adata)
    print("library:", library_id)

    # %% The annotation, if any: obs['annotation'].
    truth = None
    if args.annotation is not None:
        # read as text: layer numbers stay '1', '2' (an integer column reindexed to spots it lacks is made float)
        labels = pd.read_csv(args.annotation, index_col=0, dtype=str).iloc[:, 0]
        adata.obs["annotation"] = pd.Categorical(labels.reindex(adata.obs_names))     # NaN: a spot it does not name
        truth = "annotation"

    # %% The spatial graph (obsp['spatial_connectivities'], ['spatial_distances'], uns['spatial_neighbors']).
    stcore.gr.spatial_graph(adata, n_neighbors=3)

    # %% Spatial domains, with a progress bar over the epochs: obs['domain'].
    stcore.tl.domains(adata, n_clusters=args.n_clusters, seed=0, n_top_genes=min(3000, adata.n_vars),
                      train={"epochs": args.epochs}, progress=not args.no_progress)
    print("graph used:", dict(adata.uns["stcore"]["graph"]))

    # %% The found domains beside the annotation.
    import scanpy as sc

    sc.settings.figdir = args.out
    fig = stcore.pl.domains(adata, truth=truth, title=library_id, show=False, save="_notebook.png",
                            return_fig=True)
    scores = fig.stcore_scores.get("domain") if truth else None
    if scores:
        print(f"ARI {scores['ARI']:.3f}, NMI {scores['NMI']:.3f}", end="; ")
    print(f"figure: {args.out / 'domains_notebook.png'}")

    # %% squidpy on the stored graph: which domains neighbour which.
    out = {"adata": adata, "scores": scores, "figure": args.out / "domains_notebook.png", "nhood": None}
    try:
        import squidpy as sq
    except ImportError:
        print("squidpy is not installed (pip install -e '.[cellcharter]'): neighbourhood enrichment skipped")
        return out
    sq.gr.nhood_enrichment(adata, cluster_key="domain", n_perms=100, seed=0, show_progress_bar=False)
    z = adata.uns["domain_nhood_enrichment"]["zscore"]
    print("neighbourhood enrichment z-scores (domains x domains):")
    print(z.round(1))
    out["nhood"] = z
    return out


if __name__ == "__main__":
    main()
