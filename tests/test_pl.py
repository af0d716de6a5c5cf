"""stcore.pl.domains: colours matched to the annotation, legends, scores, the tissue image, and the
workflow's figures drawn by it."""
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import EllipseCollection, PathCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from slides import tiny_slide  # noqa: E402

import stcore  # noqa: E402
from stcore.evaluate import ari, information_scores  # noqa: E402


def _slide():
    """Three annotated bands; found domains: the bands under other names, 10 % of spots in a fourth."""
    adata = tiny_slide(n_side=12, domains=3)
    rename = {"D0": "2", "D1": "0", "D2": "1"}
    found = np.array([rename[v] for v in adata.obs["domain"].astype(str)], dtype=object)
    found[np.random.default_rng(0).random(adata.n_obs) < 0.1] = "3"
    adata.obs["truth"] = adata.obs.pop("domain")
    adata.obs["domain"] = found
    return adata, rename


def _spot_colours(ax) -> list[str]:
    """Each spot's colour in a panel, in the order it was drawn."""
    coll = [c for c in ax.collections if isinstance(c, (EllipseCollection, PathCollection))][0]
    return [to_hex(c) for c in coll.get_facecolors()]


def test_found_domains_take_the_colour_of_the_label_they_match():
    adata, rename = _slide()
    axes = stcore.pl.domains(adata, truth="truth", show=False)
    assert len(axes) == 2
    truth_colours, found_colours = _spot_colours(axes[0]), _spot_colours(axes[1])
    found = adata.obs["domain"].to_numpy()
    order = np.argsort(found != "NA", kind="stable")      # spots are drawn in their own order
    truth = adata.obs["truth"].astype(str).to_numpy()
    for t, f in rename.items():
        spots = np.flatnonzero(found[order] == f)
        t_colour = {truth_colours[i] for i in np.flatnonzero(truth == t)}
        assert len(t_colour) == 1 and {found_colours[i] for i in spots} == t_colour, (t, f)
    extra = {found_colours[i] for i in np.flatnonzero(found[order] == "3")}
    assert len(extra) == 1 and extra.isdisjoint(set(truth_colours))   # the unmatched domain: a colour of its own
    # Legends on both panels; the found panel's names the label each domain matched.
    texts = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes]
    assert texts[0] == ["D0", "D1", "D2"]
    assert texts[1] == ["0 (D1)", "1 (D2)", "2 (D0)", "3"]
    plt.close("all")


def test_a_domain_matched_to_a_label_of_the_same_name_is_named_as_matched():
    """Layers annotated '0', '1', '2' and found domains '0' ... '3': the domain '2' matched to the annotated '2'
    was listed as '2', as the unmatched '3' is, so only its colour told that it had a match; now '2 (2)'."""
    adata, rename = _slide()            # band D0 found as '2', D1 as '0', D2 as '1'
    adata.obs["truth"] = adata.obs["truth"].astype(str).map({"D0": "2", "D1": "1", "D2": "0"})
    axes = stcore.pl.domains(adata, truth="truth", show=False)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["0", "1", "2"]
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["0 (1)", "1 (0)", "2 (2)", "3"]
    plt.close("all")


def test_the_matched_colours_are_kept_for_scanpy_and_squidpy():
    """uns['domain_colors'] holds what the figure drew, so scanpy's own plot of the domains matches it."""
    import pandas as pd
    import scanpy as sc

    adata, _ = _slide()
    adata.obs["domain"] = pd.Categorical(adata.obs["domain"], categories=["3", "2", "1", "0", "9"])  # '9': no spot
    adata.obs["truth"] = adata.obs["truth"].astype("category")
    axes = stcore.pl.domains(adata, truth="truth", show=False)
    drawn = dict(zip(adata.obs["domain"].astype(str), _spot_colours(axes[1])))     # no 'NA': drawn in order
    stored = dict(zip(adata.obs["domain"].cat.categories, adata.uns["domain_colors"]))
    assert {c: to_hex(stored[c]) for c in "0123"} == {c: drawn[c] for c in "0123"}
    assert len(set(stored[c] for c in "0123")) == 4
    assert stored["9"] not in {stored[c] for c in "0123"} | {"#d3d3d3"}     # no spot: a colour of its own
    truth_drawn = dict(zip(adata.obs["truth"].astype(str), _spot_colours(axes[0])))
    assert dict(zip(adata.obs["truth"].cat.categories, map(to_hex, adata.uns["truth_colors"]))) == truth_drawn
    # scanpy reads them: its scatter of the domains uses the same colour for each spot.
    ax = sc.pl.embedding(adata, basis="spatial", color="domain", show=False)
    theirs = [to_hex(c) for c in ax.collections[0].get_facecolors()]
    order = ax.collections[0].get_offsets()
    ours = {tuple(np.round(p, 6)): drawn[d] for p, d in zip(adata.obsm["spatial"], adata.obs["domain"].astype(str))}
    assert [ours[tuple(np.round(p, 6))] for p in np.asarray(order)] == theirs
    plt.close("all")


def test_scanpy_draws_an_annotation_with_unused_categories_and_missing_labels_after_pl_domains():
    """A categorical annotation with a category no spot holds (left by subsetting) and spots without a label:
    the unused category was stored in scanpy's grey for missing values, and scanpy's plots then stopped
    with 'new categories must not include old categories'."""
    import pandas as pd
    import scanpy as sc

    adata, _ = _slide()
    truth = adata.obs["truth"].astype(object)
    truth[:5] = np.nan
    adata.obs["truth"] = pd.Categorical(truth, categories=["D0", "D1", "D2", "D9"])    # 'D9': no spot
    stcore.pl.domains(adata, truth="truth", show=False)
    stored = dict(zip(adata.obs["truth"].cat.categories, adata.uns["truth_colors"]))
    assert len(set(stored.values())) == 4 and "#d3d3d3" not in stored.values()
    ax = sc.pl.embedding(adata, basis="spatial", color="truth", show=False)
    drawn = [to_hex(c) for c in ax.collections[0].get_facecolors()]
    assert drawn.count("#d3d3d3") == 5                      # the unlabelled spots, in scanpy's grey
    plt.close("all")


def test_labels_with_surrounding_spaces_are_drawn_as_they_are_scored():
    """'D1 ' (a spreadsheet's trailing space) is the label 'D1', in the legend, the colours and the scores;
    pl.domains stopped with KeyError: 'D1'."""
    import pandas as pd

    adata, _ = _slide()
    spaced = adata.obs["truth"].astype(str).replace({"D1": "D1 "})
    for truth in (spaced, pd.Categorical(spaced)):
        adata.obs["truth"] = truth
        fig = stcore.pl.domains(adata, truth="truth", show=False, return_fig=True)
        assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["D0", "D1", "D2"]
        want = ari(spaced.str.strip().to_numpy(), adata.obs["domain"].to_numpy())
        assert fig.stcore_scores["domain"]["ARI"] == pytest.approx(want)
    assert len(set(adata.uns["truth_colors"])) == 3
    plt.close("all")


def test_an_annotation_of_nullable_integers_with_missing_labels_is_drawn_and_matched():
    """An annotation of pandas' nullable integers (Int64: layers 1, 2, 3, some spots <NA>), as
    read_csv(...).convert_dtypes() or a merge gives it: drawn with the labels '1', '2', '3' in the legend
    and its colours matched to the found domains; pl.domains stopped with KeyError: '1.0' (numpy's
    copy of the column holds 1.0, 2.0, its legend '1', '2'), and the found domains' colours matched no
    annotated label."""
    import pandas as pd

    adata, rename = _slide()
    layer = adata.obs["truth"].astype(str).str[1:].astype(int) + 1            # D0 -> 1, D1 -> 2, D2 -> 3
    layer[np.random.default_rng(1).random(adata.n_obs) < 0.1] = pd.NA
    adata.obs["truth"] = pd.array(layer, dtype="Int64")
    axes = stcore.pl.domains(adata, truth="truth", show=False)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["1", "2", "3", "NA"]
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["0 (2)", "1 (3)", "2 (1)", "3"]
    truth_colours, found_colours = _spot_colours(axes[0]), _spot_colours(axes[1])
    truth = adata.obs["truth"].astype(str).to_numpy()
    found = adata.obs["domain"].to_numpy()
    t_order = np.argsort(truth != "<NA>", kind="stable")      # spots without a label are drawn first
    for t, f in rename.items():
        layer_colour = {truth_colours[i] for i in np.flatnonzero(truth[t_order] == str(int(t[1:]) + 1))}
        assert len(layer_colour) == 1 and {found_colours[i] for i in np.flatnonzero(found == f)} == layer_colour
    plt.close("all")


def test_an_annotation_of_whole_numbers_with_missing_labels_is_drawn_as_written(tmp_path, monkeypatch):
    """Layers 1, 2, 3 held as float64 with NaN for the unlabelled spots, as pandas holds an integer
    column that misses some spots (labels.reindex(adata.obs_names), read_csv of a column with blank
    cells): drawn as '1', '2', '3' in the legends of pl.domains and of the workflow's domains.png (the
    column as it is, and as the Python floats of an object array), as an Int64 column is; they read
    '1.0', '2.0', '3.0'.  Labels that are not whole numbers (0.5) keep their decimals."""
    import pandas as pd
    import matplotlib.image as mpimg

    from stcore.evaluate import plot_domains

    adata, rename = _slide()
    layer = (adata.obs["truth"].astype(str).str[1:].astype(int) + 1).astype(float)
    layer[np.random.default_rng(1).random(adata.n_obs) < 0.1] = np.nan
    for truth in (layer.to_numpy(), layer.to_numpy().astype(object), pd.Categorical(layer)):
        adata.obs["truth"] = truth
        axes = stcore.pl.domains(adata, truth="truth", show=False)
        assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["1", "2", "3", "NA"]
        assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["0 (2)", "1 (3)", "2 (1)", "3"]
        plt.close("all")
    adata.obs["truth"] = layer / 2                                           # 0.5, 1.0, 1.5
    axes = stcore.pl.domains(adata, truth="truth", show=False)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["0.5", "1", "1.5", "NA"]
    plt.close("all")
    legends, real = [], stcore.pl.domains

    def spy(*args, **kwargs):
        fig = real(*args, **kwargs)
        legends.append([t.get_text() for t in fig.axes[0].get_legend().get_texts()])
        return fig

    monkeypatch.setattr(stcore.pl, "domains", spy)
    plot_domains(adata.obsm["spatial"], adata.obs["domain"].to_numpy(), layer, path=tmp_path / "d.png")
    assert legends == [["1", "2", "3", "NA"]] and mpimg.imread(tmp_path / "d.png").size
    plt.close("all")


def _evaluate_and_consensus(tmp_path, labels, hvg, npz):
    """The evaluate step's and the consensus step's scripts on one run's files (truth 'layer'): each
    draws its domains.png with pl.domains."""
    from types import SimpleNamespace

    from slides import script

    run = {"sample": "s1", "method": "graphst", "seed": 0, "trained_by": "graphst"}
    out = SimpleNamespace(metrics=str(tmp_path / "metrics.tsv"), png=str(tmp_path / "domains.png"),
                          labels=str(tmp_path / "consensus.tsv"))
    script("evaluate").main(SimpleNamespace(
        input=SimpleNamespace(labels=str(labels), h5ad=str(hvg), npz=str(npz)), output=out,
        params=SimpleNamespace(truth="layer", settings={}, run=run)))
    script("consensus").main(SimpleNamespace(
        input=SimpleNamespace(labels=[str(labels)] * 2, h5ad=str(hvg), npz=str(npz)), output=out,
        params=SimpleNamespace(truth="layer", settings={}, run=run | {"seed": "consensus", "consensus_of": "0,1"})))


def test_the_workflows_figures_draw_a_nullable_integer_annotation_as_pl_domains_does(tmp_path, monkeypatch):
    """An Int64 annotation with missing labels (kept so by qc in hvg.h5ad): the evaluate and consensus
    steps' domains.png show the legend '1', '2', 'NA', as pl.domains does, and domains.h5ad keeps the
    figure's colours of a categorical one in uns['<truth>_colors']; the steps passed the column's
    .to_numpy() (1.0, 2.0, NaN): legends '1.0', '2.0', and the stored colours were given in the order of
    the categories, not the figure's."""
    import pandas as pd
    import scipy.sparse as sp
    from scanpy.plotting import palettes
    from slides import evaluate_inputs

    import stcore.pl as pl
    from stcore.export import domains_adata

    slide = tiny_slide()
    layer = slide.obs["domain"].astype(str).str[1:].astype(int).to_numpy() + 1
    slide.obs["layer"] = pd.array(np.where(np.arange(slide.n_obs) % 7 == 0, None, layer), dtype="Int64")
    adata, hvg, labels, npz = evaluate_inputs(slide, tmp_path, "layer")
    assert adata.obs["layer"].dtype == "Int64"
    legends, real = [], pl.domains

    def spy(*args, **kwargs):
        fig = real(*args, **kwargs)
        legends.append([t.get_text() for t in fig.axes[0].get_legend().get_texts()])
        return fig

    monkeypatch.setattr(pl, "domains", spy)

    _evaluate_and_consensus(tmp_path, labels, hvg, npz)
    assert legends == [["1", "2", "NA"]] * 2
    # a categorical one, its categories in the order 2, 1: uns['layer_colors'] is the figure's '2', then '1'
    adata.obs["layer"] = adata.obs["layer"].astype(pd.CategoricalDtype(pd.array([2, 1], dtype="Int64")))
    h5ad = domains_adata(adata, np.arange(adata.n_obs) % 2, np.zeros((adata.n_obs, 2)),
                         sp.identity(adata.n_obs, format="csr"), method="graphst", info={}, truth="layer")
    assert list(h5ad.uns["layer_colors"]) == list(palettes.default_20[1::-1])
    plt.close("all")


def test_eleven_layers_are_drawn_in_scanpys_palette_for_eleven_labels():
    """An annotation of 11 labels (osmFISH's) is drawn in the colours scanpy gives 11 categories
    (default_20), whatever the number of found domains; the palette was sized for both columns
    (22 labels: default_28's pinks and lavenders, hard to tell apart).  Found domains without a
    match take colours of their own."""
    import pandas as pd
    from scanpy.plotting import palettes

    adata = tiny_slide(n_side=12, domains=3)
    x = adata.obsm["spatial"][:, 0]
    truth = np.digitize(x, np.quantile(x, np.linspace(0, 1, 12)[1:-1]))           # 11 bands
    adata.obs["truth"] = pd.Categorical([f"L{t:02d}" for t in truth])
    found = truth.copy()
    found[np.random.default_rng(0).random(adata.n_obs) < 0.05] = 11                # a 12th domain
    adata.obs["domain"] = pd.Categorical(found.astype(str))
    colours = stcore.pl.domain_colors(adata, "domain", truth="truth")
    assert list(colours["truth"].values()) == list(palettes.default_20[:11])
    matched = {c for d, c in colours["domain"].items() if d != "11"}
    assert matched == set(palettes.default_20[:11])
    assert colours["domain"]["11"] not in matched
    alone = stcore.pl.domain_colors(adata, "domain")                              # no annotation
    assert set(alone["domain"].values()) <= set(palettes.default_20)


def test_scanpy_draws_an_annotation_of_text_in_the_figures_colours():
    """A text annotation (not categorical): scanpy makes it categorical in anndata's natural order
    ('c2' before 'c10') and gave it its palette in that order, so its colours were not those of the
    figure, to which the domains' colours are matched; they are stored in that order."""
    import scanpy as sc

    adata = tiny_slide(n_side=12, domains=3)
    x = adata.obsm["spatial"][:, 0]
    band = np.digitize(x, np.quantile(x, np.linspace(0, 1, 12)[1:-1]))            # 11 bands
    adata.obs["truth"] = np.array([f"c{b + 1}" for b in band], dtype=object)
    adata.obs["domain"] = band.astype(str)
    axes = stcore.pl.domains(adata, truth="truth", show=False)
    ours = dict(zip(adata.obs["truth"].astype(str), _spot_colours(axes[0])))
    ax = sc.pl.embedding(adata, basis="spatial", color="truth", show=False)
    theirs = {tuple(np.round(p, 6)): to_hex(c) for p, c in zip(ax.collections[0].get_offsets(),
                                                               ax.collections[0].get_facecolors())}
    scanpys = {t: theirs[tuple(np.round(p, 6))] for p, t in zip(adata.obsm["spatial"], adata.obs["truth"].astype(str))}
    assert scanpys == ours
    plt.close("all")


def _disc_pixels(ax) -> float:
    """The width in pixels of the spots' discs on a tissue map, as drawn."""
    coll = [c for c in ax.collections if isinstance(c, EllipseCollection)][0]
    ax.figure.canvas.draw()
    x0, x1 = ax.get_xlim()
    return float(coll.get_widths()[0]) * ax.get_window_extent().width / abs(x1 - x0)


def test_cells_far_apart_on_a_large_field_are_drawn_as_visible_discs():
    """Cells 190 units apart in two patches of a 24,000 x 48,000 field, as osmFISH's: the discs, the spacing
    wide, were 1 px across at 100 dpi (osmFISH: 1.1 px); now at least MIN_SPOT_POINTS (3 px and more)."""
    import pandas as pd

    from stcore.pl import MIN_SPOT_POINTS

    adata = tiny_slide(n_side=20, domains=2)
    patch = adata.obsm["spatial"] * 1.9                   # the hex grid 190 apart
    half = adata.n_obs // 2
    patch[half:] += [20000.0, 44000.0]                      # the second half far off, as osmFISH's field
    adata.obsm["spatial"] = patch
    adata.obs["truth"] = adata.obs.pop("domain")
    adata.obs["domain"] = pd.Categorical(adata.obs["truth"].astype(str).str.removeprefix("D"))
    fig = stcore.pl.domains(adata, truth="truth", return_fig=True, show=False)
    fig.set_dpi(100)
    assert _disc_pixels(fig.axes[0]) >= 3.0
    coll = [c for c in fig.axes[0].collections if isinstance(c, EllipseCollection)][0]
    assert coll.get_widths()[0] >= MIN_SPOT_POINTS * np.ptp(patch, axis=0).max() / (3.4 * 72) - 1e-6
    plt.close("all")


def test_cells_at_one_position_do_not_shrink_the_discs():
    """Cells given twice at one position (osmFISH holds 476 such pairs) each had a nearest neighbour 0 away: the
    disc diameter, the median of those distances, fell (osmFISH: 163 units for cells 190 apart) or, where most
    cells were doubled, was 1 unit; it is the spacing of the distinct positions."""
    adata = tiny_slide(n_side=12, domains=2)
    xy = adata.obsm["spatial"]
    spacing = float(np.min(np.linalg.norm(xy[1:] - xy[:1], axis=1)))       # the grid's, 100
    twice = adata[np.r_[np.arange(adata.n_obs), np.arange(adata.n_obs // 2 + 10)]].copy()
    twice.obs_names_make_unique()
    fig = stcore.pl.domains(twice, key="domain", return_fig=True, show=False)
    coll = [c for c in fig.axes[0].collections if isinstance(c, EllipseCollection)][0]
    assert coll.get_widths()[0] == pytest.approx(spacing)
    plt.close("all")


def test_panels_and_legends_are_laid_without_blank_slots():
    """Each slot kept room for a 1.7-inch legend and a square map: a 3-panel DLPFC figure 1530 px wide had 137 px
    blank after each of its first two legends and 63 px after the last, a wide map a third of its height blank.
    Now each column is as wide as its panel with its legend, 0.15 inch apart, and no legend is cut."""
    adata, _ = _slide()
    adata.obs["again"] = adata.obs["domain"].to_numpy()
    adata.obsm["spatial"] = adata.obsm["spatial"] * [3.0, 1.0]            # a map three times wider than high
    fig = stcore.pl.domains(adata, key=["domain", "again"], truth="truth", return_fig=True, show=False)
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]
    legends = [ax.get_legend().get_window_extent(renderer) for ax in fig.axes]
    gap = 0.15 * fig.dpi
    for box, after in zip(boxes, boxes[1:]):
        assert after.x0 - box.x1 == pytest.approx(gap, abs=1.0)          # no blank slot beside a legend
    pad = boxes[0].x0
    assert legends[-1].x1 <= fig.bbox.x1 and fig.bbox.x1 - boxes[-1].x1 == pytest.approx(pad, abs=1.0)
    assert fig.bbox.y1 - max(b.y1 for b in boxes) == pytest.approx(pad, abs=1.0)       # nor above or below
    assert min(b.y0 for b in boxes) == pytest.approx(pad, abs=1.0)
    # two rows of small panels under a figure title, a title in the first column wider than its panel: every
    # panel, title and legend inside the figure's margins, none under the figure's title
    adata.obs["domains found with a long name"] = adata.obs["domain"].to_numpy()
    fig = stcore.pl.domains(adata, key=["domain", "domains found with a long name", "again"], truth="truth",
                            ncols=2, title="a title", panel_size=1.5, return_fig=True, show=False)
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]
    heading = fig.texts[0].get_window_extent(renderer)
    assert boxes[2].width > fig.axes[2].get_window_extent(renderer).width + 2 * pad     # the title's the wider
    assert min(b.x0 for b in boxes) == pytest.approx(pad, abs=1.0) and min(b.y0 for b in boxes) >= pad - 1.0
    assert max(b.x1 for b in boxes) <= fig.bbox.x1 - pad + 1.0 and max(b.y1 for b in boxes) <= heading.y0
    assert heading.y1 <= fig.bbox.y1 - pad + 1.0
    plt.close("all")


def test_a_legend_of_many_long_labels_is_not_covered_by_the_next_panel():
    """16 annotated cell types (MERFISH's 'OD Immature 1', ...) take a legend of two columns; the room beside
    each panel was fixed, so the next panel covered its second column ('OD Immat...')."""
    import pandas as pd

    adata = tiny_slide(n_side=12, domains=3)
    adata.obsm["spatial"] = np.stack(np.divmod(np.arange(adata.n_obs), 12), axis=1).astype(float)  # a square tissue
    labels = [f"OD Immature {i}" for i in range(16)]
    adata.obs["truth"] = pd.Categorical(np.array(labels)[np.arange(adata.n_obs) % 16])
    adata.obs["domain"] = pd.Categorical((np.arange(adata.n_obs) % 16).astype(str))
    fig = stcore.pl.domains(adata, truth="truth", show=False, return_fig=True)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.axes[0].get_legend().get_window_extent(renderer)
    assert legend.x1 <= fig.axes[1].get_window_extent(renderer).x0
    plt.close("all")


def test_a_palette_in_scanpys_forms():
    """palette as scanpy's plots take it: a colormap name was read letter by letter and a dict by its keys
    (matplotlib's "Invalid RGBA argument: 't'"); a palette given after colours were stored was ignored."""
    import matplotlib

    adata, _ = _slide()
    tab20 = [to_hex(c) for c in matplotlib.colormaps["tab20"].colors]
    assert list(stcore.pl.domain_colors(adata, truth="truth", palette="tab20")["truth"].values()) == tab20[:3]
    given = {"D0": "red", "D1": "green", "D2": "blue"}
    stcore.pl.domains(adata, truth="truth", palette=given, show=False)
    stored = stcore.pl.domain_colors(adata, truth="truth", palette=given)["truth"]
    assert stored == {k: to_hex(v) for k, v in given.items()}
    axes = stcore.pl.domains(adata, truth="truth", palette=["#000000", "#111111", "#222222", "#333333"], show=False)
    assert set(_spot_colours(axes[0])) == {"#000000", "#111111", "#222222"}          # not the stored ones
    with pytest.raises(ValueError, match=r"palette 'nope' is not a matplotlib colormap name\. Fix: "):
        stcore.pl.domains(adata, truth="truth", palette="nope", show=False)
    plt.close("all")


def test_scores_in_the_title_are_the_evaluations():
    adata, _ = _slide()
    fig = stcore.pl.domains(adata, truth="truth", show=False, return_fig=True)
    truth, found = adata.obs["truth"].astype(str).to_numpy(), adata.obs["domain"].to_numpy()
    want_ari, want_nmi = ari(truth, found), information_scores(truth, found)["NMI"]
    assert fig.stcore_scores["domain"] == pytest.approx({"ARI": want_ari, "NMI": want_nmi})
    assert 0.5 < want_ari < 1
    assert f"ARI {want_ari:.3f}, NMI {want_nmi:.3f}" in fig.axes[1].get_title()
    # a column tl.domains wrote: its title says what made it
    adata.uns["stcore"] = {"key": "domain", "method": "graphst+banksy", "seed": "consensus", "consensus_of": "0,1,2"}
    fig = stcore.pl.domains(adata, truth="truth", show=False, return_fig=True)
    assert fig.axes[1].get_title().startswith("domain: graphst+banksy, seeds 0, 1, 2\nARI ")
    del adata.uns["stcore"]
    # Without truth: no scores, one panel.
    fig = stcore.pl.domains(adata, show=False, return_fig=True)
    assert fig.stcore_scores == {} and len(fig.axes) == 1 and "ARI" not in fig.axes[0].get_title()
    plt.close("all")


def test_another_tools_clusters_given_as_truth_are_said(caplog):
    """The qc job refuses them as the annotation; the figure, which may compare two methods on
    purpose, draws them and says whose they are: its scores are not against an annotation."""
    adata, _ = _slide()
    adata.obs["leiden"] = adata.obs["truth"].astype(str)
    adata.uns["leiden"] = {"params": {"resolution": 1.0, "random_state": 0, "n_iterations": -1}}
    adata.obs["seurat_clusters"] = adata.obs["truth"].astype(str)
    _said_not_an_annotation(caplog, adata, [(col, rf"holds the clusters of {whose}.*not an annotation: the scores "
                                                   r"in the titles compare the domains with another method's output")
                                            for col, whose in (("leiden", r"scanpy's sc\.tl\.leiden or sc\.tl\.louvain"),
                                                               ("seurat_clusters", "Seurat's"))])


def _said_not_an_annotation(caplog, adata, cases):
    """pl.domains draws each (column, what the message says it holds) as the truth with that one
    warning, and the slide's annotation without any."""
    for col, holds in cases:
        caplog.clear()
        with caplog.at_level("WARNING", logger="stcore"):
            stcore.pl.domains(adata, truth=col, show=False)
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and re.fullmatch(rf"truth column '{col}' {holds}", said[0]), said
    caplog.clear()
    with caplog.at_level("WARNING", logger="stcore"):
        stcore.pl.domains(adata, truth="truth", show=False)
    assert not caplog.records
    plt.close("all")


def test_a_coordinate_given_as_truth_is_said(caplog):
    """Visium's grid row (obs['array_row']: DLPFC 151673's 76 rows, below the 100 labels refused as a
    per-spot value) or a column of bands that are the spots' y drawn as the annotation: scored without
    a word (the annotated layers of 151673 against its array_row: ARI 0.020).  The qc job refuses it;
    the figure draws it and says so."""
    adata, _ = _slide()
    y = np.asarray(adata.obsm["spatial"])[:, 1]
    adata.obs["array_row"] = np.unique(y, return_inverse=True)[1]
    adata.obs["band"] = [f"b{v:g}" for v in y]
    _said_not_an_annotation(caplog, adata, [(col, rf"holds a coordinate of the spots \({where}\), not an annotation: "
                                                   r"the scores in the titles compare the domains with the slide's rows "
                                                   r"or columns")
                                            for col, where in (("array_row", r"obs\['array_row'\], by its name"),
                                                               ("band", r"one label for each value of obs\['array_row'\]"))])


def test_drawn_on_the_tissue_image_in_scanpys_layout():
    adata, _ = _slide()
    scalef = 0.05
    img = np.full((int(adata.obsm["spatial"][:, 1].max() * scalef) + 20,
                   int(adata.obsm["spatial"][:, 0].max() * scalef) + 20, 3), 0.9)
    adata.uns["spatial"] = {"lib1": {"images": {"hires": img},
                                     "scalefactors": {"tissue_hires_scalef": scalef, "spot_diameter_fullres": 90.0}}}
    axes = stcore.pl.domains(adata, truth="truth", show=False)
    for ax in axes:
        assert any(isinstance(a, AxesImage) for a in ax.get_children())
        coll = [c for c in ax.collections if isinstance(c, EllipseCollection)][0]
        xy = coll.get_offsets()
        np.testing.assert_allclose(np.sort(xy[:, 0]), np.sort(adata.obsm["spatial"][:, 0] * scalef))
        np.testing.assert_allclose(coll._widths * 2, 90.0 * scalef)     # Space Ranger's spot, in image pixels
    axes = stcore.pl.domains(adata, truth="truth", img=False, show=False)
    assert not any(isinstance(a, AxesImage) for a in axes[0].get_children())
    plt.close("all")


def test_a_slide_taken_out_of_joined_visium_reads_is_drawn_on_its_own_image():
    """Two Visium slides joined as scanpy's tutorials join them (anndata.concat(..., label='library_id',
    uns_merge='unique'): every library's images kept), one taken out as tl.domains asks: pl.domains drew
    it without a tissue image (uns['spatial'] holds two libraries), where the slide names its own."""
    import anndata as ad

    parts = {}
    scalef = 0.05
    for lib, shade in (("A1", 0.2), ("B1", 0.8)):
        part, _ = _slide()
        img = np.full((int(part.obsm["spatial"][:, 1].max() * scalef) + 20,
                       int(part.obsm["spatial"][:, 0].max() * scalef) + 20, 3), shade)
        part.uns["spatial"] = {lib: {"images": {"hires": img},
                                     "scalefactors": {"tissue_hires_scalef": scalef, "spot_diameter_fullres": 90.0}}}
        parts[lib] = part
    joined = ad.concat(parts, label="library_id", index_unique="-", uns_merge="unique")
    assert sorted(joined.uns["spatial"]) == ["A1", "B1"]
    one = joined[joined.obs["library_id"] == "B1"].copy()
    axes = stcore.pl.domains(one, truth="truth", show=False)
    drawn = [a for a in axes[0].get_children() if isinstance(a, AxesImage)]
    assert len(drawn) == 1 and float(np.asarray(drawn[0].get_array()).mean()) == pytest.approx(0.8)
    plt.close("all")


def _drawn_on_image(adata, caplog) -> tuple[bool, bool]:
    """pl.domains of ``adata`` (truth column 'truth') with the warnings it logs in ``caplog``: whether every
    panel, and whether any panel, has the tissue image drawn under it."""
    with caplog.at_level("WARNING", logger="stcore"):
        axes = stcore.pl.domains(adata, truth="truth", show=False)
    drawn = [any(isinstance(a, AxesImage) for a in ax.get_children()) for ax in axes]
    return all(drawn), any(drawn)


def test_coordinates_at_the_hires_images_scale_are_not_drawn_on_it(tmp_path, caplog):
    """obsm['spatial'] at the hires image's scale (the full-resolution pixels times tissue_hires_scalef, as a
    converted or hand-scaled .h5ad holds them) beside Space Ranger's uns['spatial']: the spots were drawn
    scaled a second time, on 15% of the tissue's extent in its image's corner, by pl.domains and the
    workflow's domains.png, without a word; now drawn without the image, with a warning naming the scale and
    the fix.  Full-resolution coordinates are drawn on it as before."""
    from stcore.evaluate import plot_domains

    adata, _ = _slide()
    scalef = 0.15
    img = np.full((int(adata.obsm["spatial"][:, 1].max() * scalef) + 20,
                   int(adata.obsm["spatial"][:, 0].max() * scalef) + 20, 3), 0.9)
    adata.uns["spatial"] = {"lib1": {"images": {"hires": img},
                                     "scalefactors": {"tissue_hires_scalef": scalef, "spot_diameter_fullres": 55.0}}}
    assert _drawn_on_image(adata, caplog)[0] and not caplog.records
    adata.obsm["spatial"] = adata.obsm["spatial"] * scalef
    assert not _drawn_on_image(adata, caplog)[1]
    assert re.search(r"uns\['spatial'\]\['lib1'\]: the spots lie 15 apart .*spot_diameter_fullres is 55 .*the "
                     r"coordinates are not the image's full-resolution pixels but at the hires image's scale "
                     r"\(tissue_hires_scalef 0\.15\), and the spots would be drawn on 15% of the tissue's extent; the "
                     r"tissue image is left out.*Fix: .*adata\.obsm\['spatial'\] = adata\.obsm\['spatial'\] / 0\.15",
                     caplog.text), caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="stcore"):           # the workflow's domains.png of such a slide
        plot_domains(adata.obsm["spatial"], adata.obs["domain"].to_numpy(), adata.obs["truth"],
                     path=tmp_path / "domains.png", spatial=adata.uns["spatial"])
    assert "at the hires image's scale" in caplog.text
    caplog.clear()
    bins = adata.uns["spatial"]["lib1"]["scalefactors"]        # Visium HD: bins one diameter apart, 100 here
    bins["spot_diameter_fullres"] = 100.0
    with caplog.at_level("WARNING", logger="stcore"):
        stcore.pl.domains(adata, truth="truth", show=False)
    assert "at the hires image's scale (tissue_hires_scalef 0.15), and the spots would be drawn on 15%" in caplog.text
    plt.close("all")


def test_coordinates_at_the_lowres_images_scale_are_named_so_where_the_hires_image_is_drawn(caplog):
    """obsm['spatial'] at the lowres image's scale (full-resolution pixels times tissue_lowres_scalef) beside
    Space Ranger's uns['spatial'] with both images: the hires one is drawn, and the warning said the coordinates
    were not full-resolution pixels without naming their scale or the fix (DLPFC 151673 so: 'the spots lie 6.17
    apart ... the coordinates are not the image's full-resolution pixels, and the spots would be drawn on 4% of
    the tissue's extent'); it names the lowres image's scale and divides by its factor, as for the hires one's.
    Only the lowres image stored, and coordinates at the hires one's scale, likewise."""
    adata, _ = _slide()
    side = int(adata.obsm["spatial"].max() * 0.15) + 20
    scalefactors = {"tissue_hires_scalef": 0.15, "tissue_lowres_scalef": 0.045, "spot_diameter_fullres": 55.0}
    adata.uns["spatial"] = {"lib1": {"images": {"hires": np.full((side, side, 3), 0.9),
                                                "lowres": np.full((int(side * 0.3), int(side * 0.3), 3), 0.9)},
                                     "scalefactors": scalefactors}}
    full = adata.obsm["spatial"].copy()
    adata.obsm["spatial"] = full * 0.045
    assert not _drawn_on_image(adata, caplog)[1]
    assert re.search(r"the coordinates are not the image's full-resolution pixels but at the lowres image's scale "
                     r"\(tissue_lowres_scalef 0\.045\), and the spots would be drawn on 4% of the tissue's extent; the "
                     r"tissue image is left out.*Fix: .*adata\.obsm\['spatial'\] = adata\.obsm\['spatial'\] / 0\.045",
                     caplog.text), caplog.text
    caplog.clear()
    del adata.uns["spatial"]["lib1"]["images"]["hires"]           # the lowres image alone, coordinates at hires scale
    adata.obsm["spatial"] = full * 0.15
    with caplog.at_level("WARNING", logger="stcore"):
        stcore.pl.domains(adata, truth="truth", show=False)
    assert ("at the hires image's scale (tissue_hires_scalef 0.15), and the spots would be drawn on 15%" in caplog.text
            and "/ 0.15" in caplog.text), caplog.text
    plt.close("all")


def test_coordinates_swapped_off_an_image_longer_one_way_are_named_swapped(caplog):
    """obsm['spatial'] y first (Space Ranger's pxl_row_in_fullres, then pxl_col_in_fullres) beside a tissue image
    longer one way: 18 of the 144 spots fall off it, and the warning named the scale factors (another run's) as the
    fault and their fix; it now says that with the coordinates swapped every spot lies on the image, with the fix
    obsm['spatial'][:, ::-1].  The same slide x first is drawn on its image without a word."""
    adata, _ = _slide()
    scalef = 0.15
    reach = adata.obsm["spatial"].max(axis=0) * scalef            # x 172, y 143: an image wider than tall
    img = np.full((int(reach[1]) + 8, int(reach[0]) + 8, 3), 0.9)
    adata.uns["spatial"] = {"lib1": {"images": {"hires": img},
                                     "scalefactors": {"tissue_hires_scalef": scalef, "spot_diameter_fullres": 55.0}}}
    assert _drawn_on_image(adata, caplog)[0] and not caplog.records
    adata.obsm["spatial"] = adata.obsm["spatial"][:, ::-1].copy()
    assert not _drawn_on_image(adata, caplog)[1]
    assert re.search(r"uns\['spatial'\]\['lib1'\]: tissue_hires_scalef 0\.15 puts 18 of the 144 spots outside the hires "
                     r"image .*; with the two coordinates swapped every spot lies on it: x and y are swapped \(the pixel "
                     r"row first\), or the image was turned a quarter; the tissue image is left out.*Fix: store x then y: "
                     r"adata\.obsm\['spatial'\] = adata\.obsm\['spatial'\]\[:, ::-1\]", caplog.text), caplog.text
    assert "scale factors of the image" not in caplog.text
    plt.close("all")


def test_save_follows_scanpy_settings(tmp_path):
    import scanpy as sc

    adata, _ = _slide()
    before = sc.settings.figdir
    sc.settings.figdir = tmp_path
    try:
        assert stcore.pl.domains(adata, truth="truth", show=False, save="_tiny.png") is not None
        stcore.pl.domains(adata, truth="truth", show=False, save=".svg")       # scanpy's idiom: domains.svg
        stcore.pl.domains(adata, truth="truth", show=False, save="_v1")        # no extension: the settings' format
    finally:
        sc.settings.figdir = before
    assert (tmp_path / "domains_tiny.png").stat().st_size > 0
    assert (tmp_path / "domains.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / f"domains_v1{sc.settings.plot_suffix}.{sc.settings.file_format_figs}").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["domains_tiny.png", "domains.svg", f"domains_v1{sc.settings.plot_suffix}.{sc.settings.file_format_figs}"])
    plt.close("all")


def test_save_to_a_path_with_folders_writes_that_file(tmp_path, monkeypatch):
    """save='/abs/x.png' or 'figs/x.png' is the file's path (scanpy's suffix reading would give
    figdir/'domains/abs/x.png', a folder nobody made)."""
    import scanpy as sc

    adata, _ = _slide()
    before = sc.settings.figdir
    sc.settings.figdir = tmp_path / "figdir"
    monkeypatch.chdir(tmp_path)
    try:
        stcore.pl.domains(adata, truth="truth", show=False, save=str(tmp_path / "abs" / "slide.png"))
        stcore.pl.domains(adata, truth="truth", show=False, save="rel/slide")   # no extension: the settings' format
    finally:
        sc.settings.figdir = before
    assert (tmp_path / "abs" / "slide.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "rel" / f"slide{sc.settings.plot_suffix}.{sc.settings.file_format_figs}").stat().st_size > 0
    assert not (tmp_path / "figdir").exists()
    plt.close("all")


def test_unknown_columns_are_named():
    adata, _ = _slide()
    with pytest.raises(KeyError, match="obs\\['nope'\\]"):
        stcore.pl.domains(adata, key="nope", show=False)
    with pytest.raises(KeyError, match="obsm\\['X_umap'\\]"):
        stcore.pl.domains(adata, basis="X_umap", show=False)


def test_the_workflows_figure_is_pl_domains(tmp_path, monkeypatch):
    """evaluate.plot_domains (the DAG's domains.png) and the comparison's figures draw through pl.domains."""
    import stcore.pl as pl
    from stcore.evaluate import plot_domains
    from stcore.report import plot_slide_domains

    calls = []
    real = pl.domains
    monkeypatch.setattr(pl, "domains", lambda *a, **k: calls.append(k) or real(*a, **k))
    adata, _ = _slide()
    xy = adata.obsm["spatial"]
    plot_domains(xy, adata.obs["domain"].to_numpy(), adata.obs["truth"].to_numpy(), title="t", path=tmp_path / "a.png")
    plot_slide_domains(xy, adata.obs["truth"].to_numpy(), [("m (seed 0)", adata.obs["domain"].to_numpy())],
                       tmp_path / "b.png")
    assert len(calls) == 2 and calls[0]["truth"] == "annotation"
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0


def test_the_workflows_figure_does_not_name_its_own_annotation_column_in_a_fix(tmp_path, caplog):
    """The run's figure named the column it draws the annotation from ('annotation') in the fix of
    an 'Ambiguous' label ("adata.obs['annotation'] == 'Ambiguous'"); the qc job says it with the sample
    sheet's column."""
    import logging

    import pandas as pd

    from stcore.evaluate import plot_domains

    truth = pd.Series(["Ambiguous", "L1", "L2", "L1"] * 25, name="ground_truth")
    coords = np.array([[i % 10, i // 10] for i in range(100)], dtype=float)
    with caplog.at_level(logging.WARNING):
        plot_domains(coords, np.array(["0", "1", "1", "0"] * 25), truth, path=tmp_path / "d.png")
    assert (tmp_path / "d.png").exists()
    assert "annotation'" not in caplog.text, caplog.text


def test_legend_text_is_ten_pixels_high_in_the_workflows_figure():
    """domains.png is written at 90 dpi (report.save_figure): a 7 pt legend was 8.75 px high in it, and
    6 px on the report's first page in a 1000 px window."""
    adata, _ = _slide()
    fig = stcore.pl.domains(adata, key="domain", truth="truth", show=False, return_fig=True)
    sizes = [t.get_fontsize() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert sizes and min(sizes) * 90 / 72 >= 10, sizes
    plt.close(fig)


def test_the_comparisons_figures_title_the_annotation_as_the_runs_figures_do(tmp_path, monkeypatch, caplog):
    """The comparison's domain map titled the annotation's panel 'truth' (each run's: 'annotation'),
    and said "truth column 'truth' holds 'Ambiguous' ... adata.obs['truth']" in the report job's log."""
    import logging

    import pandas as pd

    import stcore.report as report

    kept = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: kept.append(fig))
    truth = pd.Series(["Ambiguous", "L1", "L2", "L1"] * 25, name="ground_truth")
    coords = np.array([[i % 10, i // 10] for i in range(100)], dtype=float)
    with caplog.at_level(logging.WARNING):
        report.plot_slide_domains(coords, truth, [("m (seed 0)", np.array(["0", "1", "1", "0"] * 25))],
                                  tmp_path / "d.png")
    assert kept[0].axes[0].get_title() == "annotation"
    assert "'truth'" not in caplog.text and "annotation'" not in caplog.text, caplog.text
    plt.close(kept[0])


def test_an_annotation_without_a_label_is_named_with_the_fix(caplog):
    """An annotation joined to the spots by id that matched none (a CSV whose barcodes carry another suffix,
    reindexed to obs_names as docs/notebook.py does: every label 'nan') was drawn as an empty panel and
    titled 'ARI nan, NMI nan', without a word; the workflow's qc job refuses such a truth column."""
    import logging

    import pandas as pd

    adata, _ = _slide()
    csv = pd.Series("L1", index=[f"{s}-1" for s in adata.obs_names])
    adata.obs["annotation"] = pd.Categorical(csv.reindex(adata.obs_names).astype(str))
    caplog.set_level(logging.WARNING, logger="stcore")
    fig = stcore.pl.domains(adata, truth="annotation", show=False, return_fig=True)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and re.fullmatch(
        r"truth column 'annotation' has no labels \(all missing: empty, NA, NaN or None\) on these 144 spots: "
        r"nothing is scored\. Fix: .*obs_names does \(e\.g\. 'spot0000'\).*", said[0]), said
    assert np.isnan(fig.stcore_scores["domain"]["ARI"])
    assert fig.axes[1].get_title().endswith("not scored: no annotated spot"), fig.axes[1].get_title()
    plt.close("all")


def test_the_workflow_draws_an_annotation_in_the_colours_the_slide_stores_for_it(tmp_path, monkeypatch):
    """A slide whose annotation has its own colours (uns['layer_colors'], as scanpy keeps them after a
    plot, or as a user sets them): each run's domains.png draws the annotation in them, the found
    domains matched to them, and domains.h5ad keeps them, as stcore.pl.domains does on the slide itself.
    They were replaced by scanpy's default palette in the figure and overwritten in domains.h5ad."""
    import pandas as pd
    import scipy.sparse as sp
    from slides import evaluate_inputs

    import stcore.pl as pl
    from stcore.export import domains_adata

    slide = tiny_slide(domains=3)
    slide.obs["layer"] = pd.Categorical(slide.obs.pop("domain").astype(str))
    own = ["#000000", "#00aa00", "#0000ff"]
    slide.uns["layer_colors"] = np.array(own, dtype=object)
    adata, hvg, labels, npz = evaluate_inputs(slide, tmp_path, "layer")
    expected = dict(zip(adata.obs["layer"].cat.categories, own))
    drawn, real = [], pl.domains

    def spy(*args, **kwargs):
        fig = real(*args, **kwargs)
        drawn.append(_spot_colours(fig.axes[0]))
        return fig

    monkeypatch.setattr(pl, "domains", spy)
    _evaluate_and_consensus(tmp_path, labels, hvg, npz)
    assert drawn == [[expected[v] for v in adata.obs["layer"].astype(str)]] * 2
    found = adata.obs["layer"].cat.codes.to_numpy()               # the layers found under other names
    h5ad = domains_adata(adata, found, np.zeros((adata.n_obs, 2)), sp.identity(adata.n_obs, format="csr"),
                         method="graphst", info={}, truth="layer")
    assert list(h5ad.uns["layer_colors"]) == own
    assert dict(zip(h5ad.obs["domain"].cat.categories, h5ad.uns["domain_colors"])) == {"0": own[0], "1": own[1],
                                                                                       "2": own[2]}
    plt.close("all")


def test_a_groups_domains_h5ad_is_drawn_and_scored_slide_by_slide():
    """stcore.pl.domains of a group's domains.h5ad (slides trained as one, obs['slide'], each slide's
    scores in uns['stcore']['metrics']['per_slide']) lays its slides side by side and scores each on
    its own, as its domains.png and the table do.  Without slide_key, the slides' spots (in the same
    frame, often at the same positions) were drawn over one another, each of diameter 0 where they
    coincide (empty panels), and scored pooled: ARI 0.021 where the table's was 0.045."""
    import anndata as ad
    import pandas as pd

    a, b = tiny_slide(domains=3, seed=1), tiny_slide(domains=3, seed=2)
    group = ad.concat([a, b], label="slide", keys=["a", "b"], index_unique="-")
    group.obs["truth"] = group.obs.pop("domain")
    found = group.obs["truth"].astype(str).to_numpy().copy()
    found[(group.obs["slide"] == "b").to_numpy() & (found == "D0")] = "D1"          # slide b: two layers as one
    group.obs["domain"] = pd.Categorical(found)
    group.uns["stcore"] = {"key": "domain", "sample": "g", "metrics": {"group": "g", "per_slide": {
        "a": {"ARI": 1.0}, "b": {"ARI": ari(b.obs["domain"].astype(str), found[group.obs["slide"] == "b"])}}}}
    fig = stcore.pl.domains(group, truth="truth", show=False, return_fig=True)
    scores = fig.stcore_scores["domain"]
    assert set(scores["per_slide"]) == {"a", "b"}
    assert scores["ARI"] == pytest.approx(np.mean([s["ARI"] for s in group.uns["stcore"]["metrics"]["per_slide"]
                                                   .values()]))
    coll = [c for c in fig.axes[0].collections if isinstance(c, EllipseCollection)][0]
    offsets = np.round(np.asarray(coll.get_offsets()), 6)
    assert len(np.unique(offsets, axis=0)) == group.n_obs                         # no spot over another
    plt.close("all")


def test_an_embedding_draws_its_spots_in_an_order_that_hides_no_slide_or_label():
    """Spots on an embedding overlap: each panel of one (the group's 'slide' on its joint features, the
    annotation and the domains on a UMAP) draws them in one seeded random order, the unlabelled first.
    They were drawn in the object's order, so the last slide of a group covered the others: two slides of
    one distribution, perfectly mixed, read as the second slide alone (the last fifth drawn all of it);
    on the tissue, where spots do not overlap, the order is kept."""
    import anndata as ad
    import pandas as pd

    a, b = tiny_slide(domains=3, seed=1), tiny_slide(domains=3, seed=2)
    group = ad.concat([a, b], label="slide", keys=["a", "b"], index_unique="-")
    group.obs["truth"] = group.obs.pop("domain").astype(object)
    group.obs.loc[group.obs_names[::9], "truth"] = np.nan                       # unlabelled spots
    group.obs["domain"] = pd.Categorical(group.obs["truth"].fillna("D0"))
    group.obsm["X_pca"] = np.random.default_rng(0).normal(size=(group.n_obs, 2))   # the slides mixed
    fig = stcore.pl.domains(group, truth="truth", basis=["spatial", "X_pca"], slide_key="slide", show=False,
                            return_fig=True)
    slide_ax = [ax for ax in fig.axes if ax.get_title().startswith("slide")][0]
    colours = {to_hex(h.get_markerfacecolor()): t.get_text()
               for h, t in zip(slide_ax.get_legend().legend_handles, slide_ax.get_legend().get_texts())}
    drawn = [colours[c] for c in _spot_colours(slide_ax)]
    top = drawn[-len(drawn) // 5:]                                              # the last fifth drawn
    for name in ("a", "b"):
        assert 0.3 < top.count(name) / len(top) < 0.7, (name, top.count(name), len(top))
    truth_ax = [ax for ax in fig.axes if ax.get_title() == "truth\non pca"][0]
    spots = _spot_colours(truth_ax)
    unlabelled = int(group.obs["truth"].isna().sum())
    assert set(spots[:unlabelled]) == {"#d3d3d3"} and "#d3d3d3" not in spots[unlabelled:]   # grey underneath
    plt.close("all")


def test_slides_joined_after_each_was_clustered_are_drawn_and_scored_slide_by_slide():
    """Two slides' results joined with anndata.concat(..., label='library_id') (each clustered on its own,
    its domains numbered its own way; anndata drops uns['stcore']): pl.domains drew their spots, at the
    same positions, over one another and scored the domains pooled, one slide's '0' and the other's as
    one domain (ARI well below 1 where each slide's is 1).  The slides are laid side by side and scored
    each on its own, as with slide_key='library_id'; so under a slide column whose spots lie among each
    other ('batch', AnnData.concatenate's)."""
    import anndata as ad
    import pandas as pd

    parts = []
    for seed, names in ((1, {"D0": "0", "D1": "1", "D2": "2"}), (2, {"D0": "2", "D1": "0", "D2": "1"})):
        part = tiny_slide(domains=3, seed=seed)
        part.obs["truth"] = part.obs.pop("domain")
        part.obs["domain"] = pd.Categorical(part.obs["truth"].astype(str).map(names))
        parts.append(part)
    for label in ("library_id", "batch"):
        joined = ad.concat(parts, label=label, keys=["A", "B"], index_unique="-")
        fig = stcore.pl.domains(joined, truth="truth", show=False, return_fig=True)
        scores = fig.stcore_scores["domain"]
        assert set(scores.get("per_slide", {})) == {"A", "B"}, (label, scores)
        assert scores["ARI"] == pytest.approx(1.0)
        assert scores == stcore.pl.domains(joined, truth="truth", slide_key=label, show=False,
                                           return_fig=True).stcore_scores["domain"]
        coll = [c for c in fig.axes[0].collections if isinstance(c, EllipseCollection)][0]
        offsets = np.round(np.asarray(coll.get_offsets()), 6)
        assert len(np.unique(offsets, axis=0)) == joined.n_obs                      # no spot over another
    one = ad.concat(parts, label="library_id", keys=["A", "B"], index_unique="-")
    one = one[one.obs["library_id"] == "A"].copy()                                 # one slide taken out
    assert "per_slide" not in stcore.pl.domains(one, truth="truth", show=False, return_fig=True).stcore_scores["domain"]
    plt.close("all")


def test_slides_joined_without_a_slide_column_are_warned_of_when_drawn(caplog):
    """Two slides' results joined with anndata.concat(..., index_unique='-') without label= (no column
    says which slide each spot came from), in one frame: pl.domains drew them over one another and
    scored them pooled without a word (two perfect labellings of DLPFC 151673 and 151674 numbered
    each its own way: ARI 0.435).  It says so, with tl.domains' words for such an object, and the fix."""
    import anndata as ad
    import pandas as pd

    parts = {}
    for name, seed, names in (("A", 1, {"D0": "0", "D1": "1"}), ("B", 2, {"D0": "1", "D1": "0"})):
        part = tiny_slide(seed=seed)
        part.obs["truth"] = part.obs.pop("domain")
        part.obs["domain"] = pd.Categorical(part.obs["truth"].astype(str).map(names))
        parts[name] = part
    parts["B"].obsm["spatial"] = parts["B"].obsm["spatial"] + [50.0, 29.0]      # the other slide's spots between
    joined = ad.concat(parts, index_unique="-")
    with caplog.at_level("WARNING", logger="stcore.pl"):
        stcore.pl.domains(joined, truth="truth", show=False)
    said = [r.getMessage() for r in caplog.records if "joined without a column naming" in r.getMessage()]
    assert len(said) == 1 and "the spot ids end in 2 suffixes ('-' then 'A', 'B')" in said[0], caplog.text
    assert said[0].endswith("Fix: join the slides with anndata.concat(..., label='library_id') and draw them with "
                            "slide_key='library_id' (each scored on its own)")
    caplog.clear()
    with caplog.at_level("WARNING", logger="stcore.pl"):
        stcore.pl.domains(ad.concat(parts, label="library_id", index_unique="-"), truth="truth", show=False)
    assert "joined without a column naming" not in caplog.text
    plt.close("all")


def test_slides_clustered_apart_are_drawn_each_in_the_colours_of_its_own_match(monkeypatch):
    """Two results joined (each slide clustered on its own, its domains numbered its own way): the
    domains were matched to the annotation's colours pooled, so one slide's domains were drawn in the
    colours of the layers they are not, the legend saying '0 (D0)' for a domain that is D1 on the other
    slide, under the title 'ARI 1.000 (mean of 2 slides)'.  Each slide's domains are matched on that
    slide and listed under its name; a group's domains, found as one, keep one colour per domain."""
    import anndata as ad
    import pandas as pd

    parts = {}
    for name, seed, names in (("A", 1, {"D0": "0", "D1": "1"}), ("B", 2, {"D0": "1", "D1": "0"})):
        part = tiny_slide(seed=seed)
        part.obs["truth"] = part.obs.pop("domain")
        part.obs["domain"] = pd.Categorical(part.obs["truth"].astype(str).map(names))
        parts[name] = part
    joined = ad.concat(parts, label="library_id", index_unique="-")
    fig = stcore.pl.domains(joined, truth="truth", show=False, return_fig=True)
    truth_ax, found_ax = fig.axes[0], fig.axes[1]

    def spot_colours(ax):
        coll = [c for c in ax.collections if isinstance(c, EllipseCollection)][0]
        return np.round(np.asarray(coll.get_facecolors())[:, :3], 6)

    np.testing.assert_array_equal(spot_colours(found_ax), spot_colours(truth_ax))      # perfect labellings
    legend = [t.get_text() for t in found_ax.get_legend().get_texts()]
    assert legend == ["A: 0 (D0)", "A: 1 (D1)", "B: 0 (D1)", "B: 1 (D0)"], legend
    assert "domain_colors" not in joined.uns          # no one colour per domain for sc.pl.spatial
    joined.obs["again"] = joined.obs["domain"]
    joined.obsm["X_pca"] = joined.obsm["spatial"][:, ::-1].copy()
    fig = stcore.pl.domains(joined, key=["domain", "again"], truth="truth", basis=["spatial", "X_pca"], show=False,
                            return_fig=True)
    assert [t.get_text() for t in fig.axes[2].get_legend().get_texts()] == legend
    stcore.pl.domains(joined, show=False)             # no annotation to match: one colour per label
    # a group's figure (domains.png: its slides' joint domains) keeps one colour per domain
    from stcore.evaluate import plot_domains

    seen = {}
    monkeypatch.setattr("stcore.report.save_figure", lambda fig, path: seen.setdefault(
        "legend", [t.get_text() for t in fig.axes[1].get_legend().get_texts()]))
    plot_domains(joined.obsm["spatial"], joined.obs["domain"].to_numpy(), joined.obs["truth"], path="unused.png",
                 slides=joined.obs["library_id"].to_numpy())
    assert seen["legend"] == ["0 (D0)", "1 (D1)"], seen
    plt.close("all")


def test_slides_clustered_apart_and_joined_side_by_side_are_scored_slide_by_slide():
    """Two slides' results joined with anndata.concat(..., label='batch') (or 'sample', 'slide'), the
    second offset to lie beside the first, as slides are laid out in one frame to be drawn together:
    pl.domains scored the domains pooled, one slide's '0' and the other's as one domain (two perfect
    labellings: ARI -0.008; DLPFC 151673 and 151674 so: 0.435).  Where no stcore call found them over
    all these spots (anndata drops uns['stcore']; uns_merge='first' keeps one slide's), they are
    scored slide by slide; slides clustered as one by tl.domains (side by side, its record over all
    spots) are scored pooled, as before."""
    import anndata as ad
    import pandas as pd

    parts = []
    for seed, names in ((1, {"D0": "0", "D1": "1"}), (2, {"D0": "1", "D1": "0"})):
        part = tiny_slide(seed=seed)
        part.obs["truth"] = part.obs.pop("domain")
        part.obs["domain"] = pd.Categorical(part.obs["truth"].astype(str).map(names))
        parts.append(part)
    parts[1].obsm["spatial"] = parts[1].obsm["spatial"] + [2000.0, 0.0]
    for label in ("batch", "sample", "slide"):
        joined = ad.concat(parts, label=label, keys=["A", "B"], index_unique="-")
        scores = stcore.pl.domains(joined, truth="truth", show=False, return_fig=True).stcore_scores["domain"]
        assert set(scores.get("per_slide", {})) == {"A", "B"} and scores["ARI"] == pytest.approx(1.0), (label, scores)
    together = ad.concat(parts, label="batch", keys=["A", "B"], index_unique="-")
    del together.obs["domain"]
    stcore.tl.domains(together, n_clusters=2, train={"epochs": 2}, cluster={"n_init": 1}, n_top_genes=30,
                      progress=False)
    assert "per_slide" not in stcore.pl.domains(together, truth="truth", show=False,
                                                return_fig=True).stcore_scores["domain"]


@pytest.mark.parametrize("stored", [["#1F77B4", "#FF7F0E", "#2CA02C"], ["tab:blue", "tab:orange", "tab:green"]])
def test_an_unmatched_domain_never_takes_an_annotation_colour_written_otherwise(stored):
    """The annotation's stored colours written otherwise than scanpy's palette (upper-case hex, as R and
    Seurat export them; matplotlib names): a found domain matched to no label took the palette's first
    colour, '#1f77b4', the colour of the annotation's 'D0' (and of the domain matched to it) written in
    lower case: two domains drawn as one."""
    from matplotlib.colors import to_hex

    adata, _ = _slide()
    adata.obs["truth"] = adata.obs["truth"].astype("category")
    adata.uns["truth_colors"] = list(stored)
    colors = stcore.pl.domain_colors(adata, "domain", truth="truth")["domain"]
    drawn = [to_hex(c) for c in colors.values()]
    assert len(set(drawn)) == len(drawn), colors            # four domains, four colours
    axes = stcore.pl.domains(adata, truth="truth", show=False)
    found = adata.obs["domain"].to_numpy()
    order = np.argsort(found != "NA", kind="stable")
    extra = {_spot_colours(axes[1])[i] for i in np.flatnonzero(found[order] == "3")}
    assert extra.isdisjoint(set(_spot_colours(axes[0])))    # the unmatched domain: a colour of its own
    plt.close("all")


def test_slides_side_by_side_are_named_under_their_spots():
    """A group's domains.png (and slides joined after each was clustered) lays the slides side by side on
    the tissue panels without a word of which is which: a slide scored 0 in the table could not be found
    in its group's map.  Each slide's name is written under its spots, in sheet order, left to right."""
    import anndata as ad
    import pandas as pd

    parts = []
    for seed in (1, 2):
        part = tiny_slide(domains=3, seed=seed)
        part.obs["truth"] = part.obs.pop("domain")
        part.obs["domain"] = pd.Categorical(part.obs["truth"].astype(str))
        parts.append(part)
    joined = ad.concat(parts, label="slide", keys=["151673", "151674"], index_unique="-")
    axes = stcore.pl.domains(joined, truth="truth", slide_key="slide", show=False)
    for ax in axes:
        named = sorted((t.get_position()[0], t.get_text()) for t in ax.texts)
        assert [name for _, name in named] == ["151673", "151674"], named
        x = np.asarray([c for c in ax.collections if isinstance(c, EllipseCollection)][0].get_offsets())[:, 0]
        left = x[joined.obs["slide"].to_numpy() == "151673"]
        assert left.min() <= named[0][0] <= left.max() < named[1][0]
    assert not stcore.pl.domains(parts[0], truth="truth", show=False)[0].texts     # one slide: nothing added
    plt.close("all")


def test_legends_list_numbered_names_in_natural_order(tmp_path, monkeypatch):
    """'Layer2' before 'Layer10' and 'domain 2' before 'domain 10' in pl.domains' legends and the report's
    maps (they were sorted as text: Layer1, Layer10, Layer11, Layer2, ...); an order the column was given
    is kept."""
    from stcore.report import plot_slide_domains

    adata = tiny_slide(n_side=12, domains=12)
    band = adata.obs["domain"].astype(str).str[1:].astype(int).to_numpy()
    layers = [f"Layer{i + 1}" for i in range(12)]
    adata.obs["layer"] = [layers[b] for b in band]
    adata.obs["found"] = [f"domain {b}" for b in band]

    def legend(ax):
        return [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()]

    found = [f"domain {i}" for i in range(12)]
    for truth in (adata.obs["layer"], adata.obs["layer"].astype("category")):   # text; pandas' default order
        adata.obs["truth"] = truth
        axes = stcore.pl.domains(adata, key="found", truth="truth", show=False)
        assert legend(axes[0]) == layers and legend(axes[1]) == found
    given = ["Layer12"] + layers[:-1]
    adata.obs["truth"] = adata.obs["layer"].astype("category").cat.reorder_categories(given)
    assert legend(stcore.pl.domains(adata, key="found", truth="truth", show=False)[0]) == given
    plt.close("all")

    drawn = {}
    monkeypatch.setattr("stcore.report.save_figure", lambda fig, path: drawn.setdefault("fig", fig))
    plot_slide_domains(adata.obsm["spatial"], adata.obs["layer"].to_numpy(),
                       [("graphst", adata.obs["found"].to_numpy())], tmp_path / "map.png")
    assert legend(drawn["fig"].axes[0]) == layers and legend(drawn["fig"].axes[1]) == found
    plt.close("all")


def test_a_runs_map_of_many_long_names_fits_the_reports_page(monkeypatch):
    """A run's domains.png (written at 90 dpi) of 20 labels of up to 45 characters (two legend columns each)
    was 1825 px wide, its panels side by side: the report's first page showed it at half its size (legend text
    5 px high).
    Its panels are laid one under another, the map as wide as the page's column, no legend cut at its
    right edge; a map of 7 short labels keeps its panels side by side."""
    import pandas as pd

    from stcore.evaluate import plot_domains
    from stcore.report import MAP_MIN_PX

    drawn = []
    monkeypatch.setattr("stcore.report.save_figure", lambda fig, path: drawn.append(fig))
    adata = tiny_slide(n_side=30, domains=20)
    band = adata.obs["domain"].astype(str).str[1:].astype(int).to_numpy()
    names = [f"Excitatory neurons layer {i} intratelencephalic" if i % 2 else f"Inhibitory interneurons type {i} (SST+)"
             for i in range(20)]
    rng = np.random.default_rng(0)
    found = np.where(rng.random(adata.n_obs) < 0.1, rng.integers(0, 20, adata.n_obs), band)
    plot_domains(adata.obsm["spatial"], found, pd.Series([names[b] for b in band]), title="a", path="a.png")
    plot_domains(adata.obsm["spatial"], found % 7, pd.Series([f"Layer{b % 7 + 1}" for b in band]), title="a",
                 path="a.png")
    from stcore.report import plot_slide_domains      # the comparison's map of 3 methods: 3962 px wide

    plot_slide_domains(adata.obsm["spatial"], np.array([names[b] for b in band], dtype=object),
                       [(f"method {i}", found) for i in range(3)], "b.png")
    wide, short, methods = drawn
    assert methods.get_figwidth() * 90 <= 1.1 * MAP_MIN_PX
    for fig in drawn:
        fig.canvas.draw()
        for ax in fig.axes:
            assert ax.get_legend().get_window_extent().x1 <= fig.bbox.x1 + 1
    assert wide.get_figwidth() * 90 <= 1.1 * MAP_MIN_PX
    assert len({round(ax.get_position().x0, 3) for ax in wide.axes}) == 1          # one under another
    assert len({round(ax.get_position().y0, 3) for ax in short.axes}) == 1         # side by side
    assert short.get_figwidth() * 90 <= 920
    plt.close("all")


def test_a_count_per_spot_given_as_truth_is_said(caplog):
    """Xenium's obs['transcript_counts'] (about a thousand values over 100,000 cells, so fewer labels than
    half the spots) drawn as the annotation: scored without a word.  The qc job refuses it; the figure
    draws it and says so."""
    adata = tiny_slide(n_side=16, domains=3)
    adata.obs["truth"] = adata.obs.pop("domain")
    adata.obs["domain"] = adata.obs["truth"].astype(str)
    adata.obs["transcript_counts"] = np.arange(adata.n_obs) % 110 + 200
    _said_not_an_annotation(caplog, adata, [("transcript_counts",
                                             r"holds a quantity measured in each spot \(110 distinct whole numbers over "
                                             r"256 spots, as a count or a size per spot takes\), not an annotation: the "
                                             r"scores in the titles compare the domains with that quantity")])


def test_an_annotation_in_another_order_than_the_spots_is_said(caplog):
    """An annotation assigned from a table not reindexed to obs_names, drawn as the truth: scored without
    a word.  The figure says what the qc job's log says; the annotation in the spots' order draws
    without a warning."""
    adata = tiny_slide(n_side=16, domains=3)
    adata.obs["truth"] = adata.obs.pop("domain")
    adata.obs["domain"] = adata.obs["truth"].astype(str)
    adata.obs["shuffled"] = np.random.default_rng(0).permutation(adata.obs["truth"].to_numpy())
    _said_not_an_annotation(caplog, adata, [("shuffled",
                                             r"shows no spatial pattern: the largest Moran's I of its labels over the "
                                             r"spatial graph is -?0\.\d+ .*Fix: assign them by spot id, e\.g\. "
                                             r"adata\.obs\['shuffled'\] = labels\.reindex\(adata\.obs_names\), or "
                                             r"adata\.obsm\['spatial'\] = positions\.loc.*")])


def test_each_column_is_titled_by_the_call_that_wrote_it(tmp_path):
    """Two tl.domains calls with different key_added: each column's title names its own call's method and seeds,
    in memory and after write_h5ad / read_h5ad (the record kept the last call only: the first column's title
    lost 'graphst, seed 0')."""
    import anndata as ad

    adata = tiny_slide()
    adata.obs["truth"] = adata.obs.pop("domain")
    fast = {"train": {"epochs": 2}, "cluster": {"n_init": 1}, "n_top_genes": 30, "progress": False}
    stcore.tl.domains(adata, n_clusters=2, **fast)
    stcore.tl.domains(adata, n_clusters=2, seed=[1, 2, 3], key_added="again", **fast)
    adata.write_h5ad(tmp_path / "a.h5ad")
    for a in (adata, ad.read_h5ad(tmp_path / "a.h5ad")):
        fig = stcore.pl.domains(a, key=["domain", "again"], truth="truth", show=False, return_fig=True)
        assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [
            "truth", "domain: graphst, seed 0", "again: graphst, seeds 1, 2, 3"]
        fig = stcore.pl.domains(a, key="domain", show=False, return_fig=True)
        assert [ax.get_title() for ax in fig.axes] == ["domain: graphst, seed 0"]
        plt.close("all")
    stcore.tl.domains(adata, n_clusters=2, seed=4, **fast)        # 'domain' written again: its new call's title
    fig = stcore.pl.domains(adata, key=["domain", "again"], show=False, return_fig=True)
    assert [ax.get_title() for ax in fig.axes] == ["domain: graphst, seed 4", "again: graphst, seeds 1, 2, 3"]
    adata.obs["again"] = adata.obs["domain"]                       # replaced since: no call's title
    fig = stcore.pl.domains(adata, key="again", show=False, return_fig=True)
    assert [ax.get_title() for ax in fig.axes] == ["again"]
    plt.close("all")


def test_a_column_drawn_on_an_embedding_a_later_call_wrote_over_is_said(caplog):
    """obsm['X_graphst'] is the last graphst call's: the first call's domains drawn on it were titled 'on graphst'
    as if on their own embedding; the panel now names whose it is, with a warning."""
    adata = tiny_slide()
    fast = {"train": {"epochs": 2}, "cluster": {"n_init": 1}, "n_top_genes": 30, "progress": False}
    stcore.tl.domains(adata, n_clusters=2, key_added="first", **fast)
    stcore.tl.domains(adata, n_clusters=2, seed=1, key_added="second", **fast)
    with caplog.at_level("WARNING", logger="stcore.pl"):
        fig = stcore.pl.domains(adata, key=["first", "second"], basis="X_graphst", show=False, return_fig=True)
    assert [ax.get_title() for ax in fig.axes] == ["first: graphst, seed 0\non graphst of second",
                                                   "second: graphst, seed 1\non graphst"]
    said = [r.getMessage() for r in caplog.records if "X_graphst" in r.getMessage()]
    assert len(said) == 1 and ("wrote obs['second'] (graphst, seed 1), not that of obs['first'] (graphst, seed 0): "
                                 "obs['first'] is drawn on another training's embedding") in said[0]
    stcore.tl.domains(adata, n_clusters=2, seed=2, key_added="first", **fast)   # 'first' again: 'second' on its
    fig = stcore.pl.domains(adata, key=["first", "second"], basis="X_graphst", show=False, return_fig=True)
    assert [ax.get_title() for ax in fig.axes] == ["first: graphst, seed 2\non graphst",
                                                   "second: graphst, seed 1\non graphst of first"]
    plt.close("all")


def test_each_columns_call_is_read_once_however_many_panels_draw_it(monkeypatch):
    """Naming the call that wrote a column reads every spot's id and label (stcore.tl.labelling: 0.8 s on 1,000,000
    spots, 2-vCPU AMD EPYC); pl.domains read them again for each panel, twice each time, and three times more
    for a panel on an embedding a later call wrote over: 16 passes for two columns on two bases.  Each column's
    is now read once, the titles unchanged."""
    import stcore.tl

    adata = tiny_slide()
    fast = {"train": {"epochs": 2}, "cluster": {"n_init": 1}, "n_top_genes": 30, "progress": False}
    stcore.tl.domains(adata, n_clusters=2, key_added="first", **fast)
    stcore.tl.domains(adata, n_clusters=2, seed=1, key_added="second", **fast)
    read, labelling = [], stcore.tl.labelling
    monkeypatch.setattr(stcore.tl, "labelling", lambda values: read.append(values.name) or labelling(values))
    fig = stcore.pl.domains(adata, key=["first", "second"], basis=["spatial", "X_graphst"], show=False,
                            return_fig=True)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == [
        "first: graphst, seed 0", "second: graphst, seed 1", "first: graphst, seed 0\non graphst of second",
        "second: graphst, seed 1\non graphst"]
    assert sorted(read) == ["first", "second"], read
    plt.close("all")


def test_an_earlier_calls_embeddings_go_with_its_column_when_another_key_was_written_since():
    """tl.domains under key 'a' (graphst and expression), under 'b' (graphst), then 'a' again with graphst alone:
    obsm['X_expression'] held the first 'a' call's embedding, whose labels are gone, and pl.domains drew the new
    'a' domains on it titled 'on expression' (it was removed only where the replaced column was the last call's)."""
    adata = tiny_slide()
    fast = {"train": {"epochs": 2}, "cluster": {"n_init": 1}, "n_top_genes": 30, "progress": False}
    stcore.tl.domains(adata, n_clusters=2, method=["graphst", "expression"], seed=range(3), key_added="a", **fast)
    stcore.tl.domains(adata, n_clusters=2, key_added="b", **fast)
    assert {"X_graphst", "X_expression"} <= set(adata.obsm)
    stcore.tl.domains(adata, n_clusters=2, seed=1, key_added="a", **fast)
    assert "X_expression" not in adata.obsm and "X_graphst" in adata.obsm
    fig = stcore.pl.domains(adata, key=["a", "b"], basis="X_graphst", show=False, return_fig=True)
    assert [ax.get_title() for ax in fig.axes] == ["a: graphst, seed 1\non graphst",
                                                   "b: graphst, seed 0\non graphst of a"]
    plt.close("all")


def test_each_column_is_drawn_on_the_positions_its_own_call_read():
    """A column of a call that read obsm['spatial_um'] (rotated and halved here), then one of a call that read
    obsm['spatial']: without basis, each is drawn on its own call's positions (the first was drawn on
    obsm['spatial'], the last call's, alone or beside the second), the annotation on the last call's."""
    adata = tiny_slide()
    adata.obs["truth"] = adata.obs.pop("domain")
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    adata.obsm["spatial_um"] = xy[:, ::-1] * np.array([1.0, -1.0]) * 0.5
    fast = {"train": {"epochs": 2}, "cluster": {"n_init": 1}, "n_top_genes": 30, "progress": False}
    stcore.tl.domains(adata, n_clusters=2, spatial_key="spatial_um", key_added="first", **fast)
    stcore.gr.spatial_graph(adata, spatial_key="spatial")
    stcore.tl.domains(adata, n_clusters=2, seed=1, key_added="second", **fast)

    def drawn_on(fig):
        return [next(k for k in ("spatial", "spatial_um") if np.allclose(
            next(c.get_offsets() for c in ax.collections if len(c.get_offsets()) == adata.n_obs), adata.obsm[k]))
            for ax in fig.axes]

    fig = stcore.pl.domains(adata, key=["first", "second"], truth="truth", show=False, return_fig=True)
    assert drawn_on(fig) == ["spatial", "spatial_um", "spatial"]
    assert drawn_on(stcore.pl.domains(adata, key="first", show=False, return_fig=True)) == ["spatial_um"]
    assert drawn_on(stcore.pl.domains(adata, key="first", basis="spatial", show=False, return_fig=True)) == ["spatial"]
    plt.close("all")


def test_a_title_wider_than_its_panels_is_drawn_whole(tmp_path):
    """config/recommended.yaml on a slide without an annotation: each map is one panel, and its title, wider than
    the panel with its legend, was cut at both edges of the 459 px figure ('recommended, the vote over
    graphst+banksy+cellcharter at see': the slide's name and seeds lost). The figure is as wide as its title with
    the margins, the panel centred under it; a figure wider than its title keeps its width."""
    from stcore.evaluate import plot_domains

    adata, _ = _slide()
    title = "myslide: recommended, the vote over graphst+banksy+cellcharter at seeds 0, 1, 2"
    fig = stcore.pl.domains(adata, title=title, return_fig=True, show=False)
    renderer = fig.canvas.get_renderer()
    heading = fig.texts[0].get_window_extent(renderer)
    box = fig.axes[0].get_tightbbox(renderer)
    pad = heading.x0
    assert pad >= 1.0 and fig.bbox.x1 - heading.x1 == pytest.approx(pad, abs=1.0)      # whole, in the margins
    assert box.x0 - fig.bbox.x0 == pytest.approx(fig.bbox.x1 - box.x1, abs=1.0)        # the panel centred
    # the workflow's map (domains.png) of the same: its title inside the image
    plot_domains(adata.obsm["spatial"], adata.obs["domain"].to_numpy(), title=title, path=tmp_path / "a.png")
    from PIL import Image

    width = Image.open(tmp_path / "a.png").size[0]
    assert width >= heading.width * 90 / fig.dpi
    # a short title over the same panel: the figure as wide as the panel with its legend and margins
    short = stcore.pl.domains(adata, title="s", return_fig=True, show=False)
    renderer = short.canvas.get_renderer()
    box = short.axes[0].get_tightbbox(renderer)
    assert box.x0 == pytest.approx(short.bbox.x1 - box.x1, abs=1.0) and short.bbox.width < fig.bbox.width
    plt.close("all")


def test_an_obsm_entry_of_labellings_is_drawn_a_panel_per_member():
    """tl.domains(method=[...], seed=range(3)) keeps each method's domains in obsm['domain_methods'] and each seed's
    in obsm['domain_seeds']; pl.domains(key='domain_methods') stopped with KeyError "obs['domain_methods'] is not in
    adata.obs", so each member had to be copied into obs by hand. Now each column is a panel, titled by its member
    and that member's own method and seed, in the colours and with the scores the same labels get as an obs column
    (matched to the annotation, else to the first panel); obs gets no column."""
    adata = tiny_slide(n_side=12, domains=3)
    adata.obs["truth"] = adata.obs.pop("domain")
    fast = {"train": {"epochs": 2}, "cluster": {"n_init": 1, "algorithm": "kmeans"}, "n_top_genes": 30,
            "progress": False}
    stcore.tl.domains(adata, n_clusters=3, method=["graphst", "expression"], seed=range(3), **fast)
    columns, stored = list(adata.obs.columns), set(adata.uns)
    fig = stcore.pl.domains(adata, key=["domain", "domain_methods"], truth="truth", show=False, return_fig=True)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [
        "truth", "domain: graphst+expression, seeds 0, 1, 2", "domain_methods['graphst']: graphst, seed 0",
        "domain_methods['expression']: expression, seed 0"]
    assert list(adata.obs.columns) == columns and set(adata.uns) - stored == {"truth_colors", "domain_colors"}
    # the same colours, legends and scores as the members copied into obs by hand
    by_hand = adata.copy()
    for m in ("graphst", "expression"):
        by_hand.obs[f"domain_methods['{m}']"] = adata.obsm["domain_methods"][m]
    hand = stcore.pl.domains(by_hand, key=["domain", "domain_methods['graphst']", "domain_methods['expression']"],
                             truth="truth", show=False, return_fig=True)
    for drawn, copied in zip(fig.axes, hand.axes):
        assert _spot_colours(drawn) == _spot_colours(copied)
        assert ([t.get_text() for t in drawn.get_legend().get_texts()]
                == [t.get_text() for t in copied.get_legend().get_texts()])
    assert fig.stcore_scores == hand.stcore_scores
    assert stcore.pl.domain_colors(adata, ["domain", "domain_methods"], truth="truth") == stcore.pl.domain_colors(
        by_hand, ["domain", "domain_methods['graphst']", "domain_methods['expression']"], truth="truth")
    # without an annotation, each seed's domains matched to the first seed's
    seeds = stcore.pl.domains(adata, key="domain_seeds", show=False, return_fig=True)
    assert [ax.get_title() for ax in seeds.axes] == [f"domain_seeds['seed{s}']: graphst+expression, seed {s}"
                                                     for s in range(3)]
    for s in range(3):
        by_hand.obs[f"domain_seeds['seed{s}']"] = adata.obsm["domain_seeds"][f"seed{s}"]
    hand = stcore.pl.domains(by_hand, key=[f"domain_seeds['seed{s}']" for s in range(3)], show=False, return_fig=True)
    assert [_spot_colours(ax) for ax in seeds.axes] == [_spot_colours(ax) for ax in hand.axes]
    # labels assigned to obs['domain'] since: the members are not titled as that call's
    adata.obs["domain"] = np.random.default_rng(0).permutation(adata.obs["domain"].to_numpy())
    fig = stcore.pl.domains(adata, key="domain_methods", show=False, return_fig=True)
    assert [ax.get_title() for ax in fig.axes] == ["domain_methods['graphst']", "domain_methods['expression']"]
    # an obsm entry that holds no labels is refused, naming what key takes and the fix; nothing written
    before = set(adata.uns)
    with pytest.raises(ValueError, match=r"key 'X_graphst' names obsm\['X_graphst'\], which holds an array of 144 x "
                                         r"64 values, not labels: .*\['domain_methods', 'domain_seeds'\]\)\. Fix: pass "
                                         r"an obs column as key, and basis='X_graphst'"):
        stcore.pl.domains(adata, key=["domain", "X_graphst"], show=False)
    assert set(adata.uns) == before
    # whole-number pixel positions as a data frame are positions, not labels, unless named as tl.domains names them
    adata.obsm["pixels"] = pd.DataFrame(np.rint(adata.obsm["spatial"]).astype(int), index=adata.obs_names,
                                        columns=["x", "y"])
    with pytest.raises(ValueError, match=r"key 'pixels' names obsm\['pixels'\], which holds a data frame of numbers"):
        stcore.pl.domains(adata, key="pixels", show=False)
    del adata.obsm["pixels"]
    with pytest.raises(KeyError, match=r"obsm entries of labels, a panel per column: \['domain_methods', "
                                       r"'domain_seeds'\]"):
        stcore.pl.domains(adata, key="nope", show=False)
    plt.close("all")


def _stereo_bins(tmp_path, nx: int = 20, ny: int = 30, side: int = 50):
    """A Stereo-seq GEM of nx x ny bins read at bin ``side`` (stcore.read.stereo), two domains."""
    import gzip

    bx, by = np.meshgrid(np.arange(nx), np.arange(ny))
    with gzip.open(tmp_path / "bins.gem.gz", "wt") as fh:
        fh.write("#FileFormat=GEMv0.1\n#BinSize=1\ngeneID\tx\ty\tMIDCount\n")
        for x, y in zip(bx.ravel() * side + 7, by.ravel() * side + 11):
            fh.write(f"g1\t{x}\t{y}\t3\n")
    adata = stcore.read.stereo(tmp_path / "bins.gem.gz", bin_size=side)
    y = adata.obsm["spatial"][:, 1]
    adata.obs["domain"] = pd.Categorical(np.where(y < np.median(y), "a", "b"))
    return adata


def test_the_legend_of_a_map_of_square_bins_shows_squares(tmp_path, monkeypatch):
    """Square bins (a Stereo-seq GEM read at bin 50) are drawn as squares; their legend beside them showed discs,
    in pl.domains and in the run's domains.png.  Now squares there, discs where the spots are discs (a hexagonal
    grid's) and on an embedding."""
    import stcore.report
    from stcore.evaluate import plot_domains

    def markers(fig):
        return [[h.get_marker() for h in ax.get_legend().legend_handles] for ax in fig.axes if ax.get_legend()]

    adata = _stereo_bins(tmp_path)
    adata.obsm["X_umap"] = adata.obsm["spatial"] / 100
    fig = stcore.pl.domains(adata, key="domain", basis=["spatial", "X_umap"], return_fig=True, show=False)
    assert markers(fig) == [["s", "s"], ["o", "o"]]         # the tissue map's bins, the embedding's markers
    plt.close("all")
    drawn = []                                              # the run's domains.png, as the workflow writes it
    monkeypatch.setattr(stcore.report, "save_figure", lambda fig, path: drawn.append(fig))
    plot_domains(adata.obsm["spatial"], adata.obs["domain"].to_numpy(), adata.obs["domain"].to_numpy(),
                 path=tmp_path / "domains.png")
    assert markers(drawn[0]) == [["s", "s"], ["s", "s"]]
    plt.close("all")
    fig = stcore.pl.domains(tiny_slide(n_side=12), key="domain", return_fig=True, show=False)
    assert markers(fig) == [["o", "o"]]                     # Visium's hexagonal grid: discs, circles
    plt.close("all")


def _on_image(xy: np.ndarray, spot_diameter: float, scalef: float = 0.2) -> dict:
    """uns['spatial'] of a slide whose full-resolution pixel coordinates are ``xy``: a grey hires image at
    ``scalef`` with a white stripe every 5 rows (a tissue), Space Ranger's spot diameter ``spot_diameter``."""
    side = int(np.ceil((xy.max() + 3 * spot_diameter) * scalef))
    img = np.full((side, side, 3), 0.5)
    img[::5] = 1.0
    return {"lib": {"images": {"hires": img},
                    "scalefactors": {"tissue_hires_scalef": scalef, "spot_diameter_fullres": spot_diameter}}}


def test_visium_hd_bins_over_their_tissue_image_are_squares_that_tile_it(tmp_path):
    """Visium HD's 8 um bins (a square grid, Space Ranger's spot_diameter_fullres their side: 29.2 px at 0.274 um a
    pixel) drawn over the tissue image were discs of that side: the image showed between them at every corner (16%
    of a 40 x 30 bin map), and the legend showed discs.  Now squares of that side in the image's pixels (times
    tissue_hires_scalef), which tile it, as squidpy draws them (spatial_scatter(shape='square')); a legend of
    squares.  On Visium's hexagonal grid and on a square grid of spots narrower than their spacing (legacy ST's
    discs, half their spacing wide) the spots stay discs."""
    from PIL import Image

    pitch, scalef = 8 / 0.274, 0.2
    bx, by = np.meshgrid(np.arange(40), np.arange(30))
    xy = np.column_stack([bx.ravel() + 3, by.ravel() + 3]) * pitch
    hd = ad.AnnData(obs=pd.DataFrame({"domain": pd.Categorical(np.where(by.ravel() < 15, "a", "b"))},
                                     index=[f"s_008um_{r:05d}_{c:05d}-1" for r, c in zip(by.ravel(), bx.ravel())]))
    hd.obsm["spatial"] = xy
    hd.uns["spatial"] = _on_image(xy, pitch, scalef)
    fig = stcore.pl.domains(hd, key="domain", return_fig=True, show=False)
    ax = fig.axes[0]
    assert any(isinstance(a, AxesImage) for a in ax.get_children())
    (coll,) = [c for c in ax.collections if isinstance(c, EllipseCollection)]
    assert len(coll.get_paths()[0].vertices) == 5                          # a square
    np.testing.assert_allclose(coll.get_widths(), pitch * scalef)           # the bin's side in the image's pixels
    assert [h.get_marker() for h in ax.get_legend().legend_handles] == ["s", "s"]
    plt.close("all")
    stcore.pl.domains(hd, key="domain", legend=False, panel_size=6, save=str(tmp_path / "hd.png"))
    rgb = np.asarray(Image.open(tmp_path / "hd.png").convert("RGB")).astype(int)
    spot = rgb.max(axis=-1) - rgb.min(axis=-1) > 30                         # the domains' colours (not grey, white)
    rows, cols = np.flatnonzero(spot.any(axis=1)), np.flatnonzero(spot.any(axis=0))
    inside = spot[rows[0] + 3:rows[-1] - 2, cols[0] + 3:cols[-1] - 2]
    assert (~inside).mean() < 0.01, f"the image shows on {(~inside).mean():.1%} of the tissue between the bins"
    plt.close("all")
    st = hd.copy()                                                          # spots of half their spacing: discs
    st.uns["spatial"] = _on_image(xy, pitch / 2, scalef)
    hexagonal = tiny_slide(n_side=12)
    hexagonal.uns["spatial"] = _on_image(hexagonal.obsm["spatial"], 100.0, scalef)
    for slide in (st, hexagonal):
        ax = stcore.pl.domains(slide, key="domain", return_fig=True, show=False).axes[0]
        assert any(isinstance(a, AxesImage) for a in ax.get_children())
        (coll,) = [c for c in ax.collections if isinstance(c, EllipseCollection)]
        assert len(coll.get_paths()[0].vertices) > 5                        # a disc
        assert {h.get_marker() for h in ax.get_legend().legend_handles} == {"o"}
        plt.close("all")


@pytest.mark.parametrize("degrees", [10.0, -30.0])
def test_bins_of_a_turned_grid_are_squares_turned_with_it(tmp_path, degrees):
    """Visium HD's bins are turned in the image's pixels where the slide was imaged at an angle.  Drawn as squares
    along the image's axes, the tissue showed through at each corner where four bins
    meet, with a saw-toothed edge (0.6% of the middle of a map of 40 x 30 bins turned 10 degrees, 7.7% at 30).
    Now each square is turned by the angle of the grid's rows (the collection's angles), over the image and
    without it; Stereo-seq's bins, along the axes, at 0."""
    from PIL import Image

    pitch, scalef, turn = 8 / 0.274, 0.2, np.deg2rad(degrees)
    bx, by = np.meshgrid(np.arange(40), np.arange(30))
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    xy = np.column_stack([bx.ravel(), by.ravel()]) * pitch @ rotation.T + 40 * pitch
    hd = ad.AnnData(obs=pd.DataFrame({"domain": pd.Categorical(np.where(by.ravel() < 15, "a", "b"))},
                                     index=[f"s_008um_{r:05d}_{c:05d}-1" for r, c in zip(by.ravel(), bx.ravel())]))
    hd.obsm["spatial"] = xy
    hd.uns["spatial"] = _on_image(xy, pitch, scalef)
    for img in (True, False):
        ax = stcore.pl.domains(hd, key="domain", img=img, return_fig=True, show=False).axes[0]
        assert any(isinstance(a, AxesImage) for a in ax.get_children()) == img
        (coll,) = [c for c in ax.collections if isinstance(c, EllipseCollection)]
        assert len(coll.get_paths()[0].vertices) == 5
        np.testing.assert_allclose(coll.get_angles(), degrees, atol=1e-6)
        plt.close("all")
        stcore.pl.domains(hd, key="domain", img=img, legend=False, panel_size=6, save=str(tmp_path / "hd.png"))
        rgb = np.asarray(Image.open(tmp_path / "hd.png").convert("RGB")).astype(int)
        spot = rgb.max(axis=-1) - rgb.min(axis=-1) > 30                     # the domains' colours
        rows, cols = np.flatnonzero(spot.any(axis=1)), np.flatnonzero(spot.any(axis=0))
        h, w = (rows[-1] - rows[0]) // 3, (cols[-1] - cols[0]) // 3
        middle = spot[rows[0] + h:rows[-1] - h, cols[0] + w:cols[-1] - w]  # within the turned tissue
        assert (~middle).mean() < 0.001, f"{(~middle).mean():.1%} of the tissue shows between the bins"
        plt.close("all")
    ax = stcore.pl.domains(_stereo_bins(tmp_path), key="domain", return_fig=True, show=False).axes[0]
    (coll,) = [c for c in ax.collections if isinstance(c, EllipseCollection)]
    assert len(coll.get_paths()[0].vertices) == 5 and abs(coll.get_angles()[0]) < 1e-6
    plt.close("all")


def test_square_bins_tile_the_tissue_map(tmp_path):
    """A Stereo-seq GEM read into square bins (stcore.read.stereo, bin 50): its bins were drawn as discs of the
    bins' side, which leave every corner white (a GEM of osmFISH's cells at bin 50 read as a field of dots); now
    squares of that side, which tile it, without white seams between rows of bins (squares snapped to the
    pixel grid left one every few rows on a panel of 63 x 127 bins).  A hexagonal grid keeps its discs."""
    import gzip

    from matplotlib.collections import EllipseCollection
    from PIL import Image

    side, nx, ny = 50, 63, 127
    bx, by = np.meshgrid(np.arange(nx), np.arange(ny))
    with gzip.open(tmp_path / "chip.gem.gz", "wt") as fh:
        fh.write("#FileFormat=GEMv0.1\n#BinSize=1\ngeneID\tx\ty\tMIDCount\n")
        for x, y in zip((bx.ravel() + 1) * side + 7, (by.ravel() + 1) * side + 11):      # the tissue from bin 1
            fh.write(f"g1\t{x}\t{y}\t3\ng2\t{x + 20}\t{y + 30}\t1\n")
    adata = stcore.read.stereo(tmp_path / "chip.gem.gz", bin_size=side)
    assert adata.n_obs == nx * ny
    adata.obs["domain"] = pd.Categorical(["a"] * adata.n_obs)
    fig = stcore.pl.domains(adata, key="domain", legend=False, panel_size=8, return_fig=True, show=False)
    (coll,) = [c for c in fig.axes[0].collections if isinstance(c, EllipseCollection)]
    assert coll.get_widths()[0] == pytest.approx(side)
    plt.close("all")
    stcore.pl.domains(adata, key="domain", legend=False, panel_size=8, save=str(tmp_path / "map.png"))
    rgb = np.asarray(Image.open(tmp_path / "map.png").convert("RGB")).astype(int)
    spot = rgb.max(axis=-1) - rgb.min(axis=-1) > 30          # the domain's colour (not the white, not the frame)
    rows, cols = np.flatnonzero(spot.any(axis=1)), np.flatnonzero(spot.any(axis=0))
    inside = spot[rows[0] + 3:rows[-1] - 2, cols[0] + 3:cols[-1] - 2]      # within the outer bins
    assert (~inside).mean() < 0.01, f"{(~inside).mean():.1%} of the tissue is white between the bins"
    white = ~spot[1:-1, 1:-1]
    seams = (white & spot[:-2, 1:-1] & spot[2:, 1:-1]) | (white & spot[1:-1, :-2] & spot[1:-1, 2:])
    assert seams.sum() == 0, f"{seams.sum()} white pixels between bins"
    plt.close("all")
    hexagonal = tiny_slide(n_side=12)
    fig = stcore.pl.domains(hexagonal, key="domain", return_fig=True, show=False)
    (coll,) = [c for c in fig.axes[0].collections if isinstance(c, EllipseCollection)]
    assert len(coll.get_paths()[0].vertices) > 5          # a disc, not a square's 5 vertices
    plt.close("all")


def test_spot_size_of_a_large_slide_is_its_spacing():
    """Of a slide of more than 50,000 positions the spots' size is still the distance to the nearest spot: the
    nearest within a random tenth of 490,000 bins of a square grid lies sqrt 2 times further (70.7 on a grid of
    side 50), and the squares drawn that wide overlapped on a large panel."""
    from stcore.pl import _spot_diameter

    b = np.meshgrid(np.arange(700), np.arange(700))
    xy = np.column_stack([b[0].ravel(), b[1].ravel()]) * 50.0
    assert _spot_diameter(xy) == pytest.approx(50.0)
    # a hexagonal grid of 60,000 spots (Visium's layout, 100 apart): its spacing, drawn or not
    i, j = np.meshgrid(np.arange(300), np.arange(200))
    hexa = np.column_stack([(i + 0.5 * (j % 2)).ravel() * 100.0, j.ravel() * 100.0 * np.sqrt(3) / 2])
    assert _spot_diameter(hexa) == pytest.approx(100.0)
