"""stcore in a notebook, as a script: a simulated slide through the notebook API, then squidpy.

    python docs/notebook.py                    # about a minute on 2 cores
    python docs/notebook.py --epochs 600 --spots 3000 --out figures/

Each cell (``# %%``) runs in Jupyter / VS Code as it stands.  The steps:

1. a simulated slide with known domains (``obs['domain']``, the annotation; raw counts in ``X``,
   coordinates in ``obsm['spatial']``), as ``stcore.simulate`` makes the workflow's demo slides;
2. ``stcore.gr.spatial_graph``: the spatial graph under squidpy's keys;
3. ``stcore.tl.domains`` with a progress bar over the epochs, the domains in
   ``obs['stcore_domain']`` (the slide's own ``domain`` column is the annotation, and is kept);
4. ``stcore.pl.domains``: the found domains beside the annotation, colours matched, ARI and NMI;
5. ``squidpy.gr.nhood_enrichment`` on the stored graph, with no extra step (squidpy comes with
   the ``cellcharter`` extra: ``pip install -e '.[cellcharter]'``; without it this step is
   skipped with a message).
"""
# %%
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

import stcore
from stcore.simulate import SimParams, simulate_slide


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spots", type=int, default=600)
    parser.add_argument("--genes", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("figures"), help="folder of the figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not hasattr(sys, "ps1") and "ipykernel" not in sys.modules:
        matplotlib.use("Agg")           # run as a script: figures go to files

    # %% A slide with known domains: three layers.
    adata = simulate_slide(SimParams(n_spots=args.spots, n_genes=args.genes, markers_per_domain=args.genes // 10,
                                     n_layers=3, n_regions=0, seed=1))
    print(adata)

    # %% The spatial graph (obsp['spatial_connectivities'], ['spatial_distances'], uns['spatial_neighbors']).
    stcore.gr.spatial_graph(adata, n_neighbors=3)

    # %% Spatial domains, with a progress bar over the epochs.
    stcore.tl.domains(adata, n_clusters=3, seed=0, n_top_genes=min(3000, args.genes), key_added="stcore_domain",
                      train={"epochs": args.epochs}, progress=not args.no_progress)
    print("graph used:", dict(adata.uns["stcore"]["graph"]))

    # %% The found domains beside the annotation.
    import scanpy as sc

    sc.settings.figdir = args.out
    fig = stcore.pl.domains(adata, key="stcore_domain", truth="domain", title="simulated slide", show=False,
                            save="_notebook.png", return_fig=True)
    scores = fig.stcore_scores["stcore_domain"]
    print(f"ARI {scores['ARI']:.3f}, NMI {scores['NMI']:.3f}; figure: {args.out / 'domains_notebook.png'}")

    # %% squidpy on the stored graph: which domains neighbour which.
    out = {"adata": adata, "scores": scores, "figure": args.out / "domains_notebook.png", "nhood": None}
    try:
        import squidpy as sq
    except ImportError:
        print("squidpy is not installed (pip install -e '.[cellcharter]'): neighbourhood enrichment skipped")
        return out
    sq.gr.nhood_enrichment(adata, cluster_key="stcore_domain", n_perms=100, seed=0, show_progress_bar=False)
    z = adata.uns["stcore_domain_nhood_enrichment"]["zscore"]
    print("neighbourhood enrichment z-scores (domains x domains):")
    print(z.round(1))
    out["nhood"] = z
    return out


if __name__ == "__main__":
    main()
