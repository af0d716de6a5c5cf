"""The comparison's figures: found domains beside the truth on the tissue, ARI per variant, a UMAP
of the embedding, and the training loss curves.

Figures of one run show the seed whose ARI is the median over that variant's seeds that have one
(the lower of the two middle ones for an even count), never the best seed; the lowest seed where
none has an ARI (a slide without an annotation).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["median_seed", "scored_seeds", "save_figure", "markdown_html", "figures_html", "page_html", "plot_slide_domains",
           "plot_ari_boxplot", "plot_umap", "plot_losses"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: The resolution :func:`save_figure` writes figures at (pixels per inch).
save_figure_dpi = 90


def save_figure(fig, path) -> None:
    """Write ``fig`` to ``path`` (PNG, written whole or not at all) and close it."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=save_figure_dpi, format="png")
    _plt().close(fig)



def fitted_map(draw, ncols: int):
    """``draw(ncols)`` (a map of :func:`stcore.pl.domains`, ``ncols`` panels a row), drawn again with fewer
    panels a row where legends of many long names (20 labels of 45 characters: two columns each) widened
    each panel's slot past 1.2 times its usual width (:data:`MAP_SLOT_PX`): side by side, a run's map was
    1825 px wide, shown at half its size in the report's first page (text 5 px high).  Its panels are laid
    one under another until a row fits the page's column (:data:`MAP_MIN_PX`)."""
    fig = draw(ncols)
    columns = fig.axes[0].get_subplotspec().get_gridspec().ncols
    slot = fig.get_figwidth() * save_figure_dpi / columns
    if columns > 1 and slot > 1.2 * MAP_SLOT_PX and fig.get_figwidth() * save_figure_dpi > MAP_MIN_PX:
        fits = max(1, int(MAP_MIN_PX // slot))
        if fits < columns:
            _plt().close(fig)
            fig = draw(fits)
    return fig


def scored_seeds(table: pd.DataFrame, slide: str, variant: str, metric: str = "ARI") -> pd.DataFrame:
    """The rows of (slide, variant) whose ``metric`` is a number, by ``metric`` then seed: the seeds a
    median by ``metric`` is taken over (none on a slide without an annotation, whose ARI is NaN)."""
    rows = table[(table["sample"].astype(str) == str(slide)) & (table["method"] == variant)]
    if metric not in rows:
        return rows.iloc[:0]
    rows = rows[np.isfinite(pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=float))]
    return rows.sort_values([metric, "seed"])


def median_seed(table: pd.DataFrame, slide: str, variant: str, metric: str = "ARI") -> int | None:
    """The seed of (slide, variant) whose ``metric`` is the median over the seeds that have one
    (:func:`scored_seeds`; lower middle); the lowest seed where none has (slides without an
    annotation: the table's ARI is NaN, or it has no ARI).  A seed whose ``metric`` is NaN is left
    out, not taken as the lowest."""
    scored = scored_seeds(table, slide, variant, metric)
    if len(scored):
        return int(scored["seed"].iloc[(len(scored) - 1) // 2])
    rows = table[(table["sample"].astype(str) == str(slide)) & (table["method"] == variant)]
    return None if rows.empty else int(min(int(s) for s in rows["seed"]))


def _panels_adata(coords, columns: dict[str, np.ndarray], obsm: dict | None = None):
    """An AnnData of ``columns`` (obs, as text) at ``coords`` (``obsm['spatial']``) for :func:`stcore.pl.domains`."""
    import anndata as ad

    obs = pd.DataFrame({name: np.asarray(v, dtype=object) for name, v in columns.items()})
    obs.index = obs.index.astype(str)
    return ad.AnnData(obs=obs, obsm={"spatial": np.asarray(coords, dtype=np.float64)} | (obsm or {}))


def plot_slide_domains(coords: np.ndarray, truth, panels: list[tuple[str, np.ndarray]], path, *,
                       title: str = "", truth_colors=None) -> None:
    """The truth, then one panel per (title, labels), on the tissue coordinates:
    :func:`stcore.pl.domains`, every panel's colours matched to the truth's (to the first
    panel's without truth; the truth in ``truth_colors``, those the slide stores for it, where
    given), with its ARI and NMI."""
    from .evaluate import _annotation_palette, figure_annotation_unsaid
    from .pl import domains

    # the annotation's panel is titled 'annotation', as in each run's domains.png (it read 'truth')
    columns = ({"annotation": truth} if truth is not None else {}) | {name: lab for name, lab in panels}
    def draw(ncols: int):
        with figure_annotation_unsaid():
            return domains(_panels_adata(coords, columns), key=[name for name, _ in panels],
                           truth="annotation" if truth is not None else None, title=title, ncols=ncols, show=False,
                           return_fig=True, palette=_annotation_palette(truth, truth_colors))

    save_figure(fitted_map(draw, 4), path)


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
        if not any(len(d) for d in data):       # a slide without an annotation: not an axis around 0
            ax.text(0.5, 0.5, f"no {metric}: no annotation", transform=ax.transAxes, ha="center", va="center",
                    fontsize=9)
            ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, path)


def plot_umap(embedding: np.ndarray, truth, found, path, *, title: str = "", seed: int = 0,
              truth_colors=None) -> None:
    """UMAP (umap-learn, 15 neighbours) of ``embedding``, coloured by truth and by found domain
    (:func:`stcore.pl.domains` on the UMAP, colours matched; the truth in ``truth_colors`` where given)."""
    import umap

    from .evaluate import _annotation_palette, figure_annotation_unsaid
    from .pl import domains

    xy = umap.UMAP(n_neighbors=15, min_dist=0.3, random_state=seed, n_jobs=1).fit_transform(
        np.asarray(embedding, dtype=np.float32))
    columns = ({"annotation": truth} if truth is not None else {}) | {"found domains": found}
    adata = _panels_adata(np.zeros((len(xy), 2)), columns, {"X_umap": xy})
    with figure_annotation_unsaid():
        fig = domains(adata, key="found domains", truth="annotation" if truth is not None else None,
                      basis="X_umap", title=title, show=False, return_fig=True,
                      palette=_annotation_palette(truth, truth_colors))
    save_figure(fig, path)


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
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):      # '17', '0.9': matplotlib's own read '1.7 x 10^1' below a decade's span
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:g}"

    for ax, part in zip(axes[0], parts):
        ax.set_title(part, fontsize=10)
        ax.set_xlabel("epoch")
        if part != "contrastive":
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(Plain())
            ax.yaxis.set_minor_formatter(Plain(minor_thresholds=(2, 0.5)))
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)


def _slide_rows(table: pd.DataFrame, slide: str) -> pd.DataFrame:
    """The table's rows of ``slide`` trained alone; of a group (the sample sheet's ``group``), its
    slides' rows of each method and seed averaged into one row named after the group.  A group's
    rows are of its slides' names: they were taken as the slide trained alone (a median over both
    runs), and a group's own map had no row, so it was its lowest seed."""
    if "group" not in table:
        return table
    group = table["group"].fillna("").astype(str)
    if (group == str(slide)).any():
        mine = table[group == str(slide)]
        numbers = [c for c in mine.columns if c not in ("sample", "group", "method", "seed")
                   and pd.api.types.is_numeric_dtype(mine[c])]
        out = mine.groupby(["method", "seed"], sort=False)[numbers].mean().reset_index()
        return out.assign(sample=str(slide))
    return table[group == ""]


#: The width (px) below which the first page's domain maps are not shrunk (they scroll sideways
#: instead): the report's text column is 918 px in a window 1,400 px wide or wider.
MAP_MIN_PX = 860

#: The width (px) of a panel of a run's map with its legend, as :func:`stcore.pl.domains` lays it out
#: by default (a 3.4 inch panel and 1.7 inch legend at :data:`save_figure_dpi`).
MAP_SLOT_PX = (3.4 + 1.7) * save_figure_dpi


def figures_html(table: pd.DataFrame, figures: list[dict], *, limit: int = 24) -> str:
    """Each slide's domain map as an image in the report's first page (an HTML fragment), from
    ``figures`` ({sample, method, seed, path} of runs' ``domains.png``, :meth:`Plan.page_figures`):
    a combination's answer (seed ``consensus``) as it is; of a slide's seeds, the median seed by
    ARI (:func:`median_seed`; the lowest where no seed has an ARI: a slide without an annotation).  Each map shows the found domains
    beside the annotation with legends and the run's ARI and NMI.  At most ``limit`` slides; the
    others are under "Domain maps" in the report's menu, as every run's are."""
    import base64
    import html
    from pathlib import Path

    by_slide: dict[str, list[dict]] = {}
    for fig in figures:
        by_slide.setdefault(str(fig["sample"]), []).append(fig)
    if not by_slide:
        return ""
    out = ["<h2>Domain maps</h2>"]
    for slide, runs in list(by_slide.items())[:limit]:
        method = runs[0]["method"]
        if str(runs[0]["seed"]) == "consensus":
            path, what = runs[0]["path"], "The slide's answer (one vote over every member at every seed)."
        else:
            seeds = {int(f["seed"]): f["path"] for f in runs}
            rows = _slide_rows(table[table["seed"].astype(str).isin([str(s) for s in seeds])], slide)
            median = median_seed(rows, slide, method)
            seed = min(seeds) if median is None else median
            path = seeds[seed]
            scored = sorted(int(s) for s in scored_seeds(rows, slide, method)["seed"])
            what = (f"Seed {seed}: the median by ARI of seeds {', '.join(str(s) for s in scored)}."
                    if len(scored) > 1 else "")
        png = Path(path).read_bytes()
        data = base64.b64encode(png).decode("ascii")
        # the map's own width (the PNG's IHDR), of which it is drawn at least 90%: shrunk to a narrow
        # window's text column (620 px at 1000 px) its legends were 6 px high; there it scrolls sideways.
        # Never more than MAP_MIN_PX wide by force: a wider map (a group's, three panels) still fits the
        # column of a 1400 px window and wider, whole on screen
        width = int.from_bytes(png[16:20], "big") if png[12:16] == b"IHDR" else 0
        size = (f"width:100%;min-width:{min(int(width * 0.9), MAP_MIN_PX)}px;max-width:{width}px" if width
                else "max-width:100%")
        # the title in the image names the slide, method and seed: the caption says only what it does not
        caption = f"<figcaption>{html.escape(what)}</figcaption>" if what else ""
        out.append(f'<figure style="margin:0.5em 0"><div style="overflow-x:auto"><img class="stcore-domains" '
                   f'alt="domains of {html.escape(slide)}: {html.escape(str(method))}" style="{size}" '
                   f'src="data:image/png;base64,{data}"></div>{caption}</figure>')
    if len(by_slide) > limit:
        out.append(f"<p>{len(by_slide) - limit} more slides: see Domain maps.</p>")
    return "\n".join(out)


# Snakemake's report shows the first page in a box one screen high that centres its content: a page
# taller than the screen would begin above the box's top, and one wider than the window (a wide
# table beside the DAG) left of its left edge, under the menu, where no scrolling reaches.  The page
# starts at the top, and at the left where it is wider than the window, and its text column is wider
# than the report's default (32rem), so that the tables show more of their columns.  The report's text style draws a backtick before and
# after each code span (`table.tsv`); the page's code spans are drawn without them, as in summary.html.
PAGE_STYLE = ("<style>.grow.flex.items-center.justify-center.h-screen{align-items:flex-start;"
              "justify-content:safe center}"
              ".prose.prose-sm.max-w-lg{max-width:min(56rem,62vw)}"
              ".prose code::before,.prose code::after{content:none}</style>")


def page_html(summary: str, maps: str) -> str:
    """The report's first page (``results/summary.html``): the summary's markdown as HTML
    (:func:`markdown_html`) with the domain maps (:func:`figures_html`) after its first section,
    the ARI table, so each slide's answer is on screen before the other metrics; it opens at its
    top (:data:`PAGE_STYLE`)."""
    body = markdown_html(summary)
    cut = [m.start() for m in re.finditer(r"<h3>", body)]
    at = cut[1] if len(cut) > 1 else len(body)
    return PAGE_STYLE + "\n" + body[:at] + (maps + "\n" if maps else "") + body[at:]


def _inline(text: str) -> str:
    """``code``, **bold** and HTML escapes of one line of the summary's markdown."""
    import html
    import re

    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def markdown_html(text: str) -> str:
    """The summary's markdown (:func:`stcore.table.summary_markdown`: headings, paragraphs, lists
    and pipe tables) as an HTML fragment, for the report's page (``results/summary.html``)."""
    out, para, items, rows = [], [], [], []

    def flush():
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if rows:
            head, body = rows[0], [r for r in rows[2:]]
            cells = lambda r, tag: "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in r)   # noqa: E731
            out.append('<div style="overflow-x:auto"><table class="stcore-summary" border="1" '
                       'style="border-collapse:collapse;font-size:0.85em">'
                       f"<thead><tr>{cells(head, 'th')}</tr></thead><tbody>"
                       + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in body) + "</tbody></table></div>")
            rows.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            if para or items:
                flush()
            rows.append([c.strip() for c in stripped.strip("|").split("|")])
            continue
        if rows:
            flush()
        if not stripped:
            flush()
        elif stripped.startswith("#"):
            flush()
            level = min(len(stripped) - len(stripped.lstrip("#")) + 1, 6)
            out.append(f"<h{level}>{_inline(stripped.lstrip('#').strip())}</h{level}>")
        elif stripped.startswith("- "):
            if para:
                flush()
            items.append(stripped[2:])
        else:
            para.append(stripped)
    flush()
    return "\n".join(out) + "\n"
