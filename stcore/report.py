"""The comparison's figures: found domains beside the truth on the tissue, ARI per variant, a UMAP
of the embedding, and the training loss curves.

Figures of one run show the seed whose ARI is the median over that variant's seeds (the
lower of the two middle ones for an even count), never the best seed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["median_seed", "plot_slide_domains", "plot_ari_boxplot", "plot_umap", "plot_losses"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    from .io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    _plt().close(fig)


def median_seed(table: pd.DataFrame, slide: str, variant: str, metric: str = "ARI") -> int | None:
    """The seed of (slide, variant) whose ``metric`` is the median over seeds (lower middle)."""
    rows = table[(table["sample"].astype(str) == str(slide)) & (table["method"] == variant)]
    rows = rows.sort_values([metric, "seed"], na_position="first")
    if rows.empty:
        return None
    return int(rows["seed"].iloc[(len(rows) - 1) // 2])


def _labels_str(values) -> np.ndarray:
    values = pd.Series(np.asarray(values, dtype=object))
    return values.where(values.notna(), "NA").astype(str).to_numpy()


def _scatter(ax, coords, labels, title, size):
    plt = _plt()
    codes, uniq = pd.factorize(pd.Series(labels), sort=True)
    cmap = plt.get_cmap("tab20", max(len(uniq), 1))
    ax.scatter(coords[:, 0], coords[:, 1], c=codes, cmap=cmap, s=size, linewidths=0,
               vmin=-0.5, vmax=len(uniq) - 0.5)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])


def plot_slide_domains(coords: np.ndarray, truth, panels: list[tuple[str, np.ndarray]], path, *,
                       title: str = "") -> None:
    """The truth, then one panel per (title, labels), on the tissue coordinates; a panel given as
    (title, labels, xy) is drawn on ``xy`` instead (e.g. an embedding's first two components)."""
    plt = _plt()
    coords = np.asarray(coords, dtype=float)
    allp = ([("truth", _labels_str(truth))] if truth is not None else []) + list(panels)
    ncol = min(5, len(allp))
    nrow = int(np.ceil(len(allp) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 3.2 * nrow + 0.4), squeeze=False)
    size = max(0.5, min(20.0, 15000 / max(len(coords), 1)))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, lab, *xy) in zip(axes.ravel(), allp):
        ax.axis("on")
        _scatter(ax, np.asarray(xy[0], dtype=float) if xy else coords, _labels_str(lab), name, size)
        if not xy:                   # a tissue map
            ax.set_aspect("equal")
            ax.invert_yaxis()
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def plot_ari_boxplot(table: pd.DataFrame, path, metric: str = "ARI") -> None:
    """One panel per slide: the distribution over seeds of ``metric`` per variant."""
    plt = _plt()
    slides = list(dict.fromkeys(table["sample"].astype(str)))
    variants = list(dict.fromkeys(table["method"]))
    ncol = min(3, len(slides))
    nrow = int(np.ceil(len(slides) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(0.55 * len(variants) * ncol + 2, 3.6 * nrow), squeeze=False)
    for ax in axes.ravel()[len(slides):]:
        ax.axis("off")
    for ax, slide in zip(axes.ravel(), slides):
        rows = table[table["sample"].astype(str) == slide]
        data = [rows.loc[rows["method"] == v, metric].dropna().to_numpy() for v in variants]
        ax.boxplot(data, showmeans=True)
        for i, d in enumerate(data, start=1):
            ax.scatter(np.full(len(d), i), d, s=8, color="k", zorder=3)
        ax.set_xticks(range(1, len(variants) + 1), variants, rotation=60, ha="right", fontsize=8)
        ax.set_title(slide, fontsize=10)
        ax.set_ylabel(metric)
    fig.tight_layout()
    _save(fig, path)


def plot_umap(embedding: np.ndarray, truth, found, path, *, title: str = "", seed: int = 0) -> None:
    """UMAP (umap-learn, 15 neighbours) of ``embedding``, coloured by truth and by found domain."""
    import umap

    xy = umap.UMAP(n_neighbors=15, min_dist=0.3, random_state=seed, n_jobs=1).fit_transform(
        np.asarray(embedding, dtype=np.float32))
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), squeeze=False)
    size = max(0.5, min(20.0, 15000 / max(len(xy), 1)))
    _scatter(axes[0, 0], xy, _labels_str(truth) if truth is not None else np.zeros(len(xy)), "truth", size)
    _scatter(axes[0, 1], xy, _labels_str(found), "found domains", size)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def plot_losses(curves: dict[tuple[str, int], pd.DataFrame], path, *, title: str = "") -> None:
    """Total, reconstruction and contrastive loss per epoch; one colour per variant, one
    line per seed."""
    plt = _plt()
    parts = ["total", "reconstruction", "contrastive"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), squeeze=False)
    variants = list(dict.fromkeys(v for v, _ in curves))
    colours = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(variants)}
    for (variant, seed), df in curves.items():
        for ax, part in zip(axes[0], parts):
            if part in df and len(df):
                ax.plot(df["epoch"], df[part], color=colours[variant], lw=0.8, alpha=0.7,
                        label=variant if seed == min(s for v, s in curves if v == variant) else None)
    for ax, part in zip(axes[0], parts):
        ax.set_title(part, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_yscale("log") if part != "contrastive" else None
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)
