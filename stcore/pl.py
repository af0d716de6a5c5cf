"""Notebook API, plots (scanpy style: keyword-only, AnnData in, ``show=`` / ``save=``).

    import stcore
    stcore.pl.domains(adata, truth="ground_truth")      # found domains beside the annotation

:func:`domains` draws every domain figure of stcore: the notebook's, the workflow's per-run
``domains.png`` (:func:`stcore.evaluate.plot_domains`) and the comparison's figures
(:mod:`stcore.report`).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd

from .validate import tissue_image as _tissue_image  # the image pl.domains draws, with its scale factors

log = logging.getLogger(__name__)

__all__ = ["domains", "domain_colors", "matched_colors", "stored_colors"]

MISSING = "NA"                 # the label of spots without one (drawn light grey)
MISSING_COLOR = "#d3d3d3"


def _palette(n: int) -> list[str]:
    """scanpy's default categorical palette for ``n`` categories (``sc.pl.palettes``)."""
    from scanpy.plotting import palettes

    for pal in (palettes.default_20, palettes.default_28, palettes.default_102):
        if n <= len(pal):
            return list(pal)
    return [palettes.default_102[i % len(palettes.default_102)] for i in range(n)]


def _labels(values) -> np.ndarray:
    """Labels as text, as they are scored (without surrounding whitespace), a missing one as ``MISSING``;
    a number held as a float that is whole as an integer: layers 1, 2, 3 of a column with NaN (float64, as
    pandas holds integers that miss some spots: ``labels.reindex(adata.obs_names)``) are '1', '2', '3', as
    the annotation writes them and as an Int64 column's are (they read '1.0', '2.0', '3.0'); 0.5 stays '0.5'."""
    from pandas.api.types import infer_dtype

    from .evaluate import is_missing_label, label_text

    s = pd.Series(np.asarray(values, dtype=object))
    text = label_text(s)
    if infer_dtype(s, skipna=True) in ("floating", "mixed-integer-float"):     # numbers only: '1.0' as text stays
        f = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(f) & (f == np.round(f)) & (np.abs(f) < 2.0 ** 53)
        text[whole] = f[whole].astype(np.int64).astype(str)
    return np.where(is_missing_label(s), MISSING, text).astype(object)


def _categories(values: pd.Series) -> list[str]:
    """The labels as they are scored (:func:`_labels`: 'Layer3 ' is 'Layer3') in the order a categorical
    column was given, else in natural order (:func:`_natural`; a categorical in plain text order, as pandas
    makes one by default, too), ``MISSING`` last."""
    present = set(_labels(values))
    own = (list(dict.fromkeys(_labels(values.cat.categories))) if isinstance(values.dtype, pd.CategoricalDtype)
           else None)
    if own is not None and own != sorted(own):
        cats = own              # an order the column was given (Layer1 ... Layer6, WM)
    else:
        # text and the order pandas gives a categorical by default (text order) in natural order, as scanpy
        # makes categories of text: 'Layer2' before 'Layer10' (was 'Layer1', 'Layer10', 'Layer11', 'Layer2')
        cats = sorted(present, key=_natural)
    return [c for c in cats if c in present and c != MISSING] + ([MISSING] if MISSING in present else [])


def _store_colors(adata, col: str, colors: dict[str, str]) -> None:
    """``uns[col + '_colors']`` in the column's categorical order, as scanpy's plots store them, so that
    ``sc.pl.spatial`` and squidpy draw the column in the colours of this figure (a category with no
    spot: a palette colour the drawn labels do not use).  A column of text is stored in the order of
    the categories anndata makes of it when scanpy draws it (``strings_to_categoricals``: natural
    order, 'c2' before 'c10'); scanpy gave it its palette in that order, so its colours were not the
    figure's.  Not for other columns (numbers: scanpy draws them on a colour scale)."""
    from pandas.api.types import infer_dtype

    values = adata.obs[col]
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories
    elif infer_dtype(values) == "string":
        from natsort import natsorted

        cats = pd.Categorical(values).categories
        if len(cats) >= len(values):      # anndata leaves such a column as it is
            return
        cats = natsorted(cats)
    else:
        return
    labels = _labels(cats)                  # as drawn: 'Layer3 ' is 'Layer3'
    # A category without a spot takes a colour of its own, never the grey scanpy gives missing values:
    # a category in that grey and a NaN in the column stopped scanpy's and squidpy's plots
    # ("new categories must not include old categories").
    taken = {_rgb(colors[c]) for c in labels if c in colors} | {MISSING_COLOR}
    spare = iter([c for c in _palette(len(labels) + len(taken)) if _rgb(c) not in taken])
    adata.uns[f"{col}_colors"] = [colors[c] if c in colors else next(spare, MISSING_COLOR) for c in labels]


def _rgb(colour) -> str:
    """A colour as drawn ('#1f77b4'), however written: '#1F77B4', 'tab:blue', an RGB tuple (its alpha left out)."""
    from matplotlib.colors import to_hex

    return to_hex(colour)


def _natural(label: str):
    """'2' before '10', 'Layer2' before 'Layer10', 'domain 2' before 'domain 10'; text after numbers."""
    from natsort import natsort_keygen

    try:
        return (0, float(label), ())
    except ValueError:
        return (1, 0.0, natsort_keygen()(label))


def matched_colors(reference, reference_colors: dict[str, str], labels, categories: list[str],
                   palette: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Colours for ``labels`` that match ``reference``'s: the one-to-one assignment of labels to
    reference labels that maximises the spots they share (the Hungarian method on their
    contingency table, scipy's ``linear_sum_assignment``) gives each matched label its reference
    label's colour; labels left over take the palette's colours that the reference does not use.
    Spots without a reference label do not count.  Returns ({label: colour}, {label: the
    reference label it matched})."""
    from scipy.optimize import linear_sum_assignment

    ref, lab = _labels(reference), _labels(labels)
    keep = (ref != MISSING) & (lab != MISSING)
    ref_cats = [c for c in reference_colors if c != MISSING]
    own = [c for c in categories if c != MISSING]
    match = {}
    if keep.any() and ref_cats and own:
        cont = pd.crosstab(pd.Categorical(lab[keep], categories=own),
                           pd.Categorical(ref[keep], categories=ref_cats), dropna=False).to_numpy()
        rows, cols = linear_sum_assignment(-cont)
        match = {own[r]: ref_cats[c] for r, c in zip(rows, cols) if cont[r, c] > 0}
    # colours compared as drawn: an annotation's '#1F77B4' (R's case) or 'tab:blue' is the palette's '#1f77b4'
    used = {_rgb(c) for c in reference_colors.values()}
    free = iter([c for c in palette if _rgb(c) not in used] + list(palette) * (1 + len(own) // max(len(palette), 1)))
    colors = {c: reference_colors[match[c]] if c in match else next(free) for c in own}
    if MISSING in categories:
        colors[MISSING] = MISSING_COLOR
    return colors, match


def _given_palette(palette) -> tuple[list | None, dict[str, str]]:
    """``palette`` in the forms scanpy's plots take it: (a list of colours, or None; {label: colour}).
    A sequence of colours, a matplotlib colormap name ('tab20', 'Set1'), a Cycler, or a dict
    {label: colour} (the reference labels'; the rest from the default palette).  A name was read
    letter by letter and a dict by its keys (matplotlib's "Invalid RGBA argument: 't'")."""
    from collections.abc import Mapping

    import matplotlib
    from matplotlib.colors import ListedColormap, to_hex

    if palette is None:
        return None, {}
    if isinstance(palette, Mapping):
        return None, {label_: to_hex(colour) for label_, colour in zip(_labels(list(palette)), palette.values())}
    if isinstance(palette, str):
        try:
            cmap = matplotlib.colormaps[palette]
        except KeyError:
            raise ValueError(f"palette {palette!r} is not a matplotlib colormap name. Fix: give a colormap name "
                             "('tab20', 'Set1'), a list of colours, or a dict {label: colour}") from None
        colours = cmap.colors if isinstance(cmap, ListedColormap) else cmap(np.linspace(0, 1, 20))
        return [to_hex(c) for c in colours], {}
    if hasattr(palette, "by_key"):          # a Cycler, as scanpy takes it
        return [to_hex(c) for c in palette.by_key()["color"]], {}
    return list(palette), {}


def _reference_colors(adata, ref_col: str, keys: list[str], palette) -> tuple[list[str], dict[str, str]]:
    """(the palette, the reference column's colours by label): those ``palette`` gives
    (:func:`_given_palette`), else ``uns[ref_col + '_colors']`` when scanpy stored them for every
    label, else the palette in the labels' order; the palette (when None) scanpy's default for the
    reference's labels, followed by further colours for the most labels of a ``keys`` column."""
    palette, given = _given_palette(palette)
    chosen = palette is not None or bool(given)          # as in scanpy, a palette given wins over stored colours
    ref_cats = _categories(adata.obs[ref_col])
    stored = None if chosen else adata.uns.get(f"{ref_col}_colors")
    n_ref = len([c for c in ref_cats if c != MISSING])
    if palette is None:
        cats_of = {c: _categories(adata.obs[c]) for c in keys}
        # the reference in scanpy's palette for its own labels (default_20 up to 20: what sc.pl.spatial
        # draws it in), then other colours for found domains left without a match; a palette sized
        # for both (default_28 from 21 labels on) drew 11 layers in shades hard to tell apart
        palette = _palette(n_ref)
        need = n_ref + max(len(v) for v in cats_of.values())
        if need > len(palette):
            palette = list(dict.fromkeys(palette + _palette(need) + _palette(len(palette) + need)))
    ref_colors = {}
    if stored is not None and len(stored) >= n_ref:
        by_cat = stored_colors(adata.obs[ref_col], stored)
        ref_colors = {c: by_cat[c] for c in ref_cats if c in by_cat}
    if len(ref_colors) != n_ref:
        ref_colors = {c: palette[i % len(palette)] for i, c in enumerate(c for c in ref_cats if c != MISSING)}
    ref_colors |= {c: given[c] for c in ref_cats if c in given}
    if MISSING in ref_cats:
        ref_colors[MISSING] = MISSING_COLOR
    return palette, ref_colors


def stored_colors(values: pd.Series, colors) -> dict[str, str]:
    """{label: colour} of a categorical column ``values`` from the colours scanpy stores for it
    (``uns[column + '_colors']``, in the order of its categories), labels as they are scored ('Layer3 '
    is 'Layer3'); empty where the column is not categorical or fewer colours than categories are given
    (scanpy then gives the column its palette again)."""
    if colors is None or not isinstance(values.dtype, pd.CategoricalDtype) or len(colors) < len(values.cat.categories):
        return {}
    return dict(zip(_labels(values.cat.categories), colors))


MEMBER_ENTRIES = ("_methods", "_seeds")    # tl.domains' obsm[key_added + ...]: each method's, each seed's labels


def _entry_of(entry: str) -> tuple[str, str] | tuple[None, None]:
    """(the obs column ``k``, ``'_methods'`` or ``'_seeds'``) of an obsm entry named as :func:`stcore.tl.domains`
    names each method's and each seed's labels (``obsm[k + '_methods']``, ``obsm[k + '_seeds']``); else (None, None)."""
    kind = next((e for e in MEMBER_ENTRIES if entry.endswith(e) and len(entry) > len(e)), None)
    return (entry.removesuffix(kind), kind) if kind else (None, None)


def _labellings(adata: ad.AnnData, key: str) -> pd.DataFrame | None:
    """``obsm[key]`` where it holds labellings, one per column (a data frame of labels: categorical or text;
    whole numbers or booleans too where it is named as :func:`stcore.tl.domains` names each method's and each
    seed's domains, ``obsm['domain_methods']``, ``obsm['domain_seeds']``: elsewhere whole numbers are as likely
    pixel positions); None where it holds anything else or is absent."""
    from pandas.api.types import is_bool_dtype, is_integer_dtype, is_object_dtype, is_string_dtype

    frame = adata.obsm[key] if key in adata.obsm else None
    if not isinstance(frame, pd.DataFrame) or frame.shape[1] == 0:
        return None
    numbered = _entry_of(key)[0] is not None

    def of_labels(column: pd.Series) -> bool:
        return (isinstance(column.dtype, pd.CategoricalDtype) or is_string_dtype(column) or is_object_dtype(column)
                or (numbered and (is_bool_dtype(column) or is_integer_dtype(column))))

    return frame if all(of_labels(frame[c]) for c in frame.columns) else None


def _with_members(adata: ad.AnnData, keys: list[str]) -> tuple[ad.AnnData, list[str], dict[str, tuple[str, str]]]:
    """``keys`` with each that names no ``obs`` column but an ``obsm`` entry of labellings (:func:`_labellings`)
    replaced by its columns, a panel each, named ``"<entry>['<column>']"`` (``"domain_methods['graphst']"``);
    and an object to draw them from: ``adata`` itself where there are none, else one that shares its ``obsm``
    and ``uns`` and holds those labels as ``obs`` columns, the user's ``obs`` left as it is.  Returns (that
    object, the keys, {panel: (obsm entry, its column)}).  An ``obsm`` entry of anything else (an embedding,
    positions) is refused, naming what ``key`` takes."""
    expanded, members = [], {}
    for k in keys:
        if k in adata.obs or k not in adata.obsm:
            expanded.append(k)          # an obs column, or missing: said below as it was
            continue
        frame = _labellings(adata, k)
        if frame is None:
            held = adata.obsm[k]
            what = (f"a data frame of numbers (columns {list(held.columns)[:4]})" if isinstance(held, pd.DataFrame)
                    else f"an array of {' x '.join(map(str, np.shape(held)))} values")
            found = [e for e in adata.obsm if _labellings(adata, e) is not None]
            here = f": {found}" if found else ""
            raise ValueError(f"key '{k}' names obsm['{k}'], which holds {what}, not labels: key takes obs columns of "
                             "domains or an obsm data frame of them, one labelling per column (tl.domains' "
                             f"obsm['<key_added>_methods'] and obsm['<key_added>_seeds']{here}). "
                             f"Fix: pass an obs column as key, and basis='{k}' to draw the domains on obsm['{k}']")
        for c in frame.columns:
            members[f"{k}['{c}']"] = (k, str(c))
            expanded.append(f"{k}['{c}']")
    if not members:
        return adata, keys, members
    obs = adata.obs.copy()
    for name, (k, c) in members.items():
        obs[name] = adata.obsm[k][c].values        # a categorical's own order of categories kept
    return ad.AnnData(obs=obs, obsm=dict(adata.obsm), uns=adata.uns), expanded, members


def _member_made_by(adata: ad.AnnData, entry: str, column: str, made_by) -> str:
    """What made ``obsm[entry][column]``, as :func:`_made_by` says it of an obs column (': graphst, seed 0'),
    where the :func:`stcore.tl.domains` call (or the workflow's run) that wrote ``obs[k]`` wrote ``obsm[entry]``
    as ``obsm[k + '_methods']`` (each of its methods' labels at its first seed: a column per method of its
    ``trained_by``) or ``obsm[k + '_seeds']`` (each seed's: a column ``seed<s>`` per seed of its
    ``consensus_of``); else '' (also where ``made_by(k)`` is '': ``obs[k]`` replaced since, or results joined)."""
    from .tl import calls_by_key, record_words

    base, kind = _entry_of(entry)
    if base is None or base not in adata.obs or not made_by(base):
        return ""
    record = calls_by_key(adata)[base]
    columns = [str(c) for c in adata.obsm[entry].columns]
    consensus = str(record.get("seed")) == "consensus"
    if kind == "_methods":
        first = record.get("embedding_of_seed") if consensus else record.get("seed")
        if first is None or columns != str(record.get("trained_by") or record.get("method")).split("+"):
            return ""
        return f": {record_words({'method': column, 'seed': first})}"
    seeds = str(record.get("consensus_of", "")).split(",")
    if not consensus or columns != [f"seed{s}" for s in seeds]:
        return ""
    return f": {record_words({'method': record.get('method'), 'seed': column.removeprefix('seed')})}"


def domain_colors(adata: ad.AnnData, key="domain", truth: str | None = None, palette=None) -> dict[str, dict[str, str]]:
    """The colours :func:`domains` draws each column in, without drawing: {column: {label:
    colour}} for ``truth`` (when given) and each column of ``key``, the found ones matched to the
    annotation (:func:`matched_colors`); an ``obsm`` entry of labellings as :func:`domains` draws it, a column each."""
    adata, keys, _ = _with_members(adata, [key] if isinstance(key, str) else list(key))
    ref_col = truth if truth is not None else keys[0]
    palette, ref_colors = _reference_colors(adata, ref_col, keys, palette)
    reference = adata.obs[ref_col]
    return {col: ref_colors if col == ref_col else matched_colors(reference, ref_colors, adata.obs[col],
                                                                   _categories(adata.obs[col]), palette)[0]
            for col in dict.fromkeys(([truth] if truth is not None else []) + keys)}


def _group_record(record) -> bool:
    """Whether ``uns['stcore']`` is a group's run (slides trained as one): the workflow keeps each
    slide's scores in its metrics (``'per_slide'``, :func:`stcore.export.run_metrics`)."""
    metrics = record.get("metrics") if isinstance(record, Mapping) else None
    return isinstance(metrics, Mapping) and isinstance(metrics.get("per_slide"), Mapping)


def _made_by(adata: ad.AnnData, col: str) -> str:
    """What made ``obs[col]``, where :func:`stcore.tl.domains` wrote it (``uns['stcore']``): ': graphst,
    seed 0', or for a vote ': graphst+banksy+cellcharter, seeds 0, 1, 2'; else '' (also where the
    column holds other labels than that call wrote on the same spots: replaced since, or more spots
    than it had: joined with other results, as ``uns['stcore']['labelling']`` tells; fewer spots that are
    not that call's with its labels, :func:`stcore.tl.part_of_labelling`: another slide taken out of results
    joined with ``anndata.concat(..., uns_merge='first')``, which keeps the first slide's record; and where
    the record names no seed)."""
    from .tl import call_words, calls_by_key, labelling, part_of_labelling, replaced_since

    record = calls_by_key(adata).get(col)       # the call that wrote col, not the last call where it wrote another
    if (not isinstance(record, dict) or record.get("key") != col or not record.get("method")
            or record.get("seed") is None):     # results joined with uns_merge='same' keep only what they share
        return ""
    made = record.get("labelling")
    if isinstance(made, Mapping) and made.get("labels") is not None:
        now = labelling(adata.obs[col])
        if replaced_since(adata, col, now):
            return ""           # the same spots, other labels: the column was replaced since that call
        if adata.n_obs > int(made.get("n_spots", adata.n_obs)):
            return ""           # more spots than that call had: results joined (anndata.concat, uns_merge='first')
        if now["spots"] != made.get("spots") and part_of_labelling(adata.obs[col], made) is False:
            return ""           # not spots of that call with its labels: another slide taken out of joined results
    return f": {call_words(adata, col)}"


def _embedding_of_another_call(adata: ad.AnnData, col: str, basis: str, made_by=None) -> str | None:
    """The ``key_added`` of a later :func:`stcore.tl.domains` call that wrote ``obsm[basis]`` (``'X_<method>'``) over
    the embedding of the call that wrote ``obs[col]`` (its record's ``embeddings_replaced``), said in a warning; else
    None.  Such a panel draws one training's domains on another's embedding (was titled as its own).  ``made_by``:
    :func:`_made_by` of a column, where the caller keeps what it found (each reads the column's every spot)."""
    from .tl import calls_by_key

    made_by = made_by or (lambda c: _made_by(adata, c))
    if not basis.startswith("X_") or not made_by(col):
        return None
    replaced = calls_by_key(adata).get(col, {}).get("embeddings_replaced")
    other = replaced.get(basis[2:]) if isinstance(replaced, Mapping) else None
    if other is None:
        return None

    def call(c: str) -> str:
        made = made_by(c).removeprefix(": ")
        return f"obs['{c}']" + (f" ({made})" if made else "")

    log.warning(f"obsm['{basis}'] holds the embedding of the later call that wrote {call(other)}, not that of "
                f"{call(col)}: obs['{col}'] is drawn on another training's "
                f"embedding (its panel says 'on {basis[2:]} of {other}'). Fix: keep each call's embedding before the "
                f"next: adata.obsm['{basis}_{col}'] = adata.obsm['{basis}'].copy() after the call that writes "
                f"obs['{col}'], and draw it with basis='{basis}_{col}'")
    return str(other)


def _image_in_register(image, xy: np.ndarray, basis: str) -> bool:
    """Whether the spots at ``xy`` fit the tissue ``image`` (:func:`_tissue_image`'s) at its scale factor
    (:func:`stcore.validate.image_register_problem`); where they do not (coordinates at an image's scale,
    this one's or another of the slide's, rather than full-resolution pixels, or of another slide), a
    warning, and the map is drawn without it."""
    from .validate import image_register_problem

    found = image_register_problem(image, xy, basis)
    if found is None:
        return True
    log.warning("uns['spatial']['%s']: %s; the tissue image is left out, and the spots are drawn without it. Fix: %s",
                image[3], *found)
    return False


def _name_slides(ax, xy: np.ndarray, slides) -> None:
    """Each slide's name under its spots, in a panel of slides laid side by side
    (:func:`stcore.evaluate.side_by_side`): which slide is which."""
    from matplotlib.transforms import blended_transform_factory

    names = pd.Series(np.asarray(slides, dtype=object))
    below = blended_transform_factory(ax.transData, ax.transAxes)      # x at the spots, y under the panel
    for name in pd.unique(names[names.notna()]):
        x = xy[(names == name).to_numpy(), 0]
        ax.text((x.min() + x.max()) / 2, -0.02, str(name), transform=below, ha="center", va="top", fontsize=8)


MIN_SPOT_POINTS = 2.5          # the narrowest disc of a tissue map: 3 px at the workflow's 90 dpi, 3.5 px at 100


def _spot_diameter(xy: np.ndarray, panel_size: float | None = None) -> float:
    """The median distance from a spot to its nearest neighbour at another position (spots then just touch;
    cells at one position, as the osmFISH file's 476 pairs, do not make it smaller: 163 units where its cells
    lie 190 apart), and no less than :data:`MIN_SPOT_POINTS` on a panel ``panel_size`` inches across the
    spots' longer side: cells a few hundred units apart on a 24,000 x 48,000 field (osmFISH) were discs of
    1 px."""
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=np.float64)
    at = np.unique(xy, axis=0)          # the positions
    if len(at) < 2:
        return 1.0
    # of more than 50,000 positions, 50,000 drawn ask for their nearest among all: the nearest within a draw of
    # a tenth lies further (sqrt 2 times the grid's side on 490,000 bins of a square grid, which then overlapped)
    probe = at if len(at) <= 50000 else at[np.random.default_rng(0).choice(len(at), 50000, replace=False)]
    d = float(np.median(cKDTree(at).query(probe, k=2)[0][:, 1]))
    d = d if d > 0 else 1.0
    if panel_size:
        span = float(np.max(xy.max(axis=0) - xy.min(axis=0)))
        d = max(d, MIN_SPOT_POINTS * span / (panel_size * 72.0))
    return d


BIN_SIDE_TOL = 0.1             # a spot diameter within 10% of its square grid's spacing: bins, drawn as squares


def _square_grid(xy: np.ndarray) -> tuple[float, float]:
    """(spacing, angle) of spots at ``xy`` on a square grid: the median distance to the nearest other spot, and the
    angle of the grid's rows to the x axis in degrees (-45 to 45; 0 for Stereo-seq's bins; Visium HD's bins are
    turned in the image's pixels where the slide was imaged at an angle), from the spots within 20% of that
    distance of each of :data:`stcore.peers.GRID_PROBES` spots at most, among all (spots at one position counted
    once; the spacing of a subsample is wider: sqrt 2 times the grid's, of a tenth of 490,000 bins).  The angle is
    that of the mean of the neighbours' directions taken four times over (a square grid's four directions made
    one)."""
    from scipy.spatial import cKDTree

    from .peers import GRID_PROBES

    xy = np.unique(np.asarray(xy, dtype=np.float64), axis=0)
    if len(xy) < 2:
        return float("nan"), 0.0
    probe = xy[np.linspace(0, len(xy) - 1, min(len(xy), GRID_PROBES)).astype(int)]
    d, i = cKDTree(xy).query(probe, k=min(len(xy), 5))
    spacing = float(np.median(d[:, 1]))
    near = (d[:, 1:] > 0.8 * spacing) & (d[:, 1:] < 1.2 * spacing)
    step = xy[i[:, 1:]] - probe[:, None, :]
    turn = np.exp(4j * np.arctan2(step[..., 1], step[..., 0])[near]).mean() if near.any() else 1.0
    return spacing, float(np.degrees(np.angle(turn) / 4))


def _squares(*args, **kwargs):
    """An ``EllipseCollection`` (sizes in data units, one shared path) whose spots are squares of side
    ``widths``, axis-aligned, neither snapped to the pixel grid nor antialiased, so that bins side by side
    leave no seam (snapped, a white line of pixels every few rows of bins)."""
    from matplotlib.collections import EllipseCollection
    from matplotlib.path import Path

    coll = EllipseCollection(*args, snap=False, antialiaseds=False, **kwargs)
    coll._paths = [Path([(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0)], closed=True)]
    return coll


def _draw(ax, xy, labels, colors, *, diameter: float | None, marker_size: float, square: float | None = None) -> None:
    """Spots as circles of ``diameter`` data units (a tissue map; ``square``, an angle in degrees: squares of that
    side turned by it, the bins of a square grid along its rows, which then tile the tissue), or markers of
    ``marker_size`` points² (an embedding).  Missing labels first, underneath.  On an embedding, where spots overlap,
    in one seeded random order: in the object's order the last slide of a group (or the last rows)
    covered the others, two slides perfectly mixed reading as the second alone."""
    from matplotlib.collections import EllipseCollection

    if diameter is None:
        shuffled = np.random.default_rng(0).permutation(len(labels))
        order = shuffled[np.argsort(labels[shuffled] != MISSING, kind="stable")]
    else:
        order = np.argsort(labels != MISSING, kind="stable")
    xy, labels = xy[order], labels[order]
    face = [colors[v] for v in labels]
    if diameter is None:
        ax.scatter(xy[:, 0], xy[:, 1], c=face, s=marker_size, linewidths=0, rasterized=True)
        return
    coll = (_squares if square is not None else EllipseCollection)(diameter, diameter, square or 0.0, units="xy",
                                                                    offsets=xy,
                                                       offset_transform=ax.transData, facecolors=face, linewidths=0)
    ax.add_collection(coll)
    pad = diameter
    ax.set_xlim(xy[:, 0].min() - pad, xy[:, 0].max() + pad)
    ax.set_ylim(xy[:, 1].min() - pad, xy[:, 1].max() + pad)


def _legend(ax, categories, colors, names: dict[str, str] | None = None, *, square: bool = False) -> None:
    """The panel's legend: a marker in each label's colour, a square where the panel's spots are drawn as
    squares (bins of a square grid, :func:`_draw`), else a disc."""
    from matplotlib.lines import Line2D

    # a matched label names its match in brackets even where both read the same ('2 (2)'): left bare, a domain
    # '2' matched to the annotation's '2' read as one without a match, as '3' beside it
    names = names or {}
    handles = [Line2D([], [], ls="", marker="s" if square else "o", markersize=6, markerfacecolor=colors[c],
                      markeredgewidth=0,
                      label=f"{c} ({names[c]})" if c in names else c) for c in categories]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8,
              ncol=1 if len(categories) <= 14 else 2, handletextpad=0.2, borderaxespad=0.3)


def _room_for_legends(fig, neighbours, columns: int, tries: int = 3, last=()) -> None:
    """Widen the figure until no panel's legend runs under the next panel of its row (a legend of two
    columns, 16 MERFISH cell types, was covered by the next panel: 'OD Immat...'), nor past the figure's
    right edge (``last``: each row's last panel; a figure of one panel per row was cut there as written)."""
    for _ in range(tries):
        renderer = fig.canvas.get_renderer()
        over = 0.0
        for left, right in neighbours:
            if left.get_legend() is None:
                continue
            left.apply_aspect(), right.apply_aspect()
            over = max(over, left.get_legend().get_window_extent(renderer).x1
                       - right.get_window_extent(renderer).x0)
        for ax in last:
            if ax.get_legend() is not None:
                ax.apply_aspect()
                over = max(over, ax.get_legend().get_window_extent(renderer).x1 - fig.bbox.x1)
        if over <= 0:
            return
        width, height = fig.get_size_inches()
        fig.set_size_inches(width + (over / fig.dpi + 0.15) * columns, height)      # each slot's share
        fig.tight_layout()


def _close_up(fig, rows, gap_in: float = 0.15, title=None) -> None:
    """Lay the panels (``rows``: each row's axes, left to right) in columns each as wide as its widest panel
    with its legend and title and rows each as high as its highest, ``gap_in`` inches apart, the figure that
    size, its margins as they were: every slot kept room for a legend 1.7 inches wide and a square map, so a
    3-panel DLPFC figure 1530 px wide (100 dpi) had 137 px blank after each of its first two legends and 63 px
    after the last, and a wide map (STARmap, 12,226 x 6,538) a quarter of its height blank.  The margins are
    tight_layout's (1.08 times the font size); ``title``, the figure's title (``fig.suptitle``), above them all."""
    import matplotlib

    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    active, extent = {}, {}
    for row in rows:
        for ax in row:
            ax.apply_aspect()
            active[ax] = ax.get_position(original=False)
            extent[ax] = ax.get_tightbbox(renderer)
    gap = gap_in * fig.dpi

    def packed(spans, margin_before, margin_after):
        # (the shift of each span, the new length) for spans laid one after another gap apart
        shift, at = [], margin_before
        for low, high in spans:
            shift.append(at - low)
            at += high - low + gap
        return shift, at - gap + margin_after

    ncols = max(len(row) for row in rows)
    columns = [(min(extent[row[c]].x0 for row in rows if c < len(row)),
                max(extent[row[c]].x1 for row in rows if c < len(row))) for c in range(ncols)]
    pad = 1.08 * matplotlib.rcParams["font.size"] / 72 * fig.dpi      # tight_layout's margin, on every side
    x_shift, new_width = packed(columns, pad, pad)
    if title is not None:
        # a title wider than the panels (one panel: a slide without an annotation) widens the figure, the panels
        # centred under it: it was cut at both edges ('recommended, the vote over graphst+banksy+cellcharter at
        # see', the slide's name and seeds lost)
        wide = title.get_window_extent(renderer).width + 2 * pad
        if wide > new_width:
            x_shift = [s + (wide - new_width) / 2 for s in x_shift]
            new_width = wide
    # rows from the top (pixels from the figure's top edge), room for the figure's title above the first
    tops = [(height - max(extent[ax].y1 for ax in row), height - min(extent[ax].y0 for ax in row)) for row in rows]
    above = title.get_window_extent(renderer).height + pad / 2 if title is not None else 0.0
    y_shift, new_height = packed(tops, pad + above, pad)
    for r, row in enumerate(rows):
        for c, ax in enumerate(row):
            box = active[ax]
            top = height - box.y1 * height + y_shift[r]
            ax.set_position([(box.x0 * width + x_shift[c]) / new_width, (new_height - top - box.height * height)
                             / new_height, box.width * width / new_width, box.height * height / new_height])
    fig.set_size_inches(new_width / fig.dpi, new_height / fig.dpi)
    if title is not None:
        title.set_y(1.0 - pad / new_height)
        title.set_verticalalignment("top")


def _positions_read(record) -> tuple[str, object]:
    """The obsm key (its ``spatial_key``) and the columns (its ``spatial_dims``, a stored squidpy graph's
    params do not name them, else those its graph was built from: records written before it kept its own)
    that the :func:`stcore.tl.domains` call of ``record`` read; ``('spatial', None)`` without one."""
    graph = record.get("graph") if isinstance(record, Mapping) else None
    if not isinstance(graph, Mapping):
        return "spatial", None
    params = graph.get("params")
    dims = graph.get("spatial_dims")
    if dims is None:
        dims = params.get("spatial_dims") if isinstance(params, Mapping) else None
    return str(graph.get("spatial_key") or "spatial"), dims


def _dims_key(dims) -> tuple | None:
    return None if dims is None else tuple(map(str, np.ravel(dims)))


def domains(adata: ad.AnnData, *, key: str | Sequence[str] | None = None, truth: str | None = None,
            basis: str | Sequence[str] | None = None, slide_key: str | None = None, library_id: str | None = None,
            img_key: str | None = None, img: bool = True, size: float = 1.0, palette=None,
            title: str | None = None, ncols: int = 4, panel_size: float = 3.4, legend: bool = True,
            show: bool | None = None, save: str | bool | None = None, return_fig: bool = False):
    """Found domains beside the annotation, in colours matched to it.

    One panel per labelling: the annotation ``obs[truth]`` first, then each column of ``key``.
    Colours correspond between panels: each found domain takes the colour of the annotated
    label it shares most spots with under a one-to-one assignment (the Hungarian method on the
    contingency table, :func:`matched_colors`); the legend of a found panel names that label in
    brackets.  Each categorical column drawn keeps its colours in ``uns[column + '_colors']``, as
    scanpy's plots do, so ``sc.pl.spatial`` and squidpy's plots then use the same.  With
    ``truth``, each found panel's title gives its ARI and NMI against it
    (:func:`stcore.evaluate.domain_metrics`, on the spots that have a label, as the workflow's
    table).  On ``basis='spatial'`` the spots are drawn as circles at their coordinates, on the
    tissue image when ``uns['spatial']`` holds one (as ``scanpy.pl.spatial`` lays it out); bins of a square
    grid (Stereo-seq's, Visium HD's) as squares of the grid's side, which tile the tissue, their legend squares.

    Parameters
    ----------
    adata : AnnData
        Spots with their labels in ``obs`` and positions in ``obsm[basis]``.
    key : str or sequence of str, default None
        ``obs`` column(s) of found domains (default ``None``: the column :func:`stcore.tl.domains`
        wrote, its ``key_added`` as ``uns['stcore']['key']`` records it, else ``'domain'``).
        Several columns (e.g. methods or seeds) give a panel each, all in matched colours.  A
        column given both as ``key`` and as ``truth`` is refused (it would be scored against itself).
        A key that names no ``obs`` column but an ``obsm`` data frame of labels, as
        :func:`stcore.tl.domains` keeps each method's domains (``obsm['domain_methods']``) and each
        seed's (``obsm['domain_seeds']``), gives a panel per column, named ``"domain_methods['graphst']"``
        and titled with that member's method and seed (``graphst, seed 0``), drawn and scored as an
        ``obs`` column of the same labels is; ``obs`` gets no column, and ``uns`` no colours for them.
        ``key=['domain', 'domain_methods']``: the answer beside each method's domains.  An ``obsm``
        entry of anything else (an embedding) is refused: that is ``basis``.
    truth : str, default None
        ``obs`` column of the annotation (default ``None``: no annotation panel, no scores;
        the colours of the first ``key`` are then the reference).  Its colours are
        ``uns[truth + '_colors']`` when scanpy stored them, else scanpy's default palette.
    basis : str or sequence of str, default None
        ``obsm`` key(s) of the positions (default ``None``: the positions
        :func:`stcore.tl.domains` read, its ``spatial_key`` and of more than two columns its
        ``spatial_dims``, else ``'spatial'``; each column of ``key`` on those its own call read, as
        :func:`stcore.tl.calls_by_key` keeps them), drawn as a tissue map, y down, equal axes.  Another key
        (e.g. ``'X_umap'``) draws the first two columns of that embedding; several keys give a row of panels each.
    slide_key : str, default None
        ``obs`` column naming each spot's slide (default ``None``: none; for a group's ``domains.h5ad``,
        whose ``uns['stcore']`` holds each slide's scores, the workflow's ``'slide'``, so it is drawn and
        scored as its ``domains.png``; for slides joined after each was clustered, as
        ``anndata.concat(..., label='library_id')`` joins them, the column ``tl.domains`` would refuse
        them by, :func:`stcore.validate.slide_column`).  The slides are laid out side
        by side on the tissue map, and each embedding row gets a panel coloured by slide; the
        scores are each slide's own, averaged (slides clustered apart number their domains each
        their own way).
    library_id : str, default None
        Library of ``uns['spatial']`` whose image is drawn (default ``None``: the only one; with
        several libraries and no ``library_id``, no image).
    img_key : str, default None
        Image of the library (default ``None``: ``'hires'``, else ``'lowres'``).
    img : bool, default True
        Draw the tissue image when there is one.
    size : float, default 1.0
        Scale of the spots (default ``1.0``: Space Ranger's spot diameter on an image, else the
        median distance between neighbouring spots at distinct positions, at least :data:`MIN_SPOT_POINTS`
        on the panel; on an embedding, scanpy's marker size).
    palette : sequence of str, str, dict or Cycler, default None
        Colours for the reference labels and for found domains left without a match, in scanpy's forms:
        a list of colours, a matplotlib colormap name (``'tab20'``), a Cycler, or a dict
        ``{label: colour}`` for the reference labels (None: scanpy's default palette).  A palette given
        replaces the colours stored in ``uns``.
    title : str, default None
        Title of the figure (default ``None``: none).
    ncols : int, default 4
        Panels per row before wrapping.
    panel_size : float, default 3.4
        Height of a panel in inches.
    legend : bool, default True
        A legend beside each panel.
    show : bool, default None
        Show the figure (default ``None``: ``scanpy.settings.autoshow``).
    save : str or bool, default None
        Write the figure to ``scanpy.settings.figdir``: ``True`` as ``domains.<format>``, a string
        as ``'domains' + save`` (``.<scanpy.settings.file_format_figs>`` added when it has no
        extension); a string with a folder in it (``'/tmp/slide.png'``, ``'figs/slide.png'``) is the
        file's own path, its folders made (default ``None``: not written).
    return_fig : bool, default False
        Return the figure instead of its axes.

    Returns
    -------
    Figure, list of Axes or None
        The :class:`matplotlib.figure.Figure` with ``return_fig=True``; else the list of the panels'
        axes, or ``None`` when the figure was shown (scanpy's convention).  ``fig.stcore_scores``
        holds ``{key: {'ARI': ..., 'NMI': ...}}`` for each found column (a member of an ``obsm``
        entry under its panel's name, ``"domain_methods['graphst']"``) when ``truth`` is given
        (scored on the spots with a label in both; ``'n_without_domain'`` where spots of the found
        column have none, NaN as a subset's domains assigned back to the whole object leave them;
        with ``slide_key``, each slide scored on its own, as the workflow's table scores a group's
        slides: the mean over the slides that have an annotation (the title names those without), and
        ``'per_slide'``: {slide: {'ARI': ..., 'NMI': ...}}, NaN for a slide without an annotation).
    """
    import matplotlib.pyplot as plt
    import scanpy as sc

    from .evaluate import annotation_problems, domain_metrics, is_missing_label, side_by_side
    from .group import SLIDE_KEY
    from .validate import (as_x_y, check_in_place, clustered_by, coordinate_of_spots, dims_columns,
                           joined_without_label, measured_per_spot, slide_column, unordered_annotation)

    check_in_place(adata, "stcore.pl.domains", copy=False, writes="the colours it draws (uns[key + '_colors'])")
    record = adata.uns.get("stcore")
    if key is None:     # what tl.domains wrote (key_added='stcore_domain' where obs['domain'] is an annotation)
        written = record.get("key") if isinstance(record, Mapping) else None
        key = str(written) if isinstance(written, str) and written in adata.obs else "domain"
    keys = [key] if isinstance(key, str) else list(key)
    if truth is not None and truth in keys:
        raise ValueError(f"obs['{truth}'] is given both as found domains (key) and as the annotation (truth): it would "
                         "be drawn and scored against itself (ARI 1). Fix: pass the column stcore.tl.domains wrote as "
                         "key (its key_added, uns['stcore']['key']) and the annotation as truth")
    # an obsm entry of labellings (tl.domains' obsm['domain_methods'], ['domain_seeds']): a panel per column, drawn
    # from an object of its own; the user's obs gets no column (each had to be copied into obs by hand: KeyError)
    user = adata
    adata, keys, members = _with_members(adata, keys)
    base_of = {name: _entry_of(entry)[0] for name, (entry, _c) in members.items()}     # of the call that wrote it
    # the tissue map: the positions tl.domains read (its spatial_key), else scanpy's obsm['spatial']
    tissue, dims = _positions_read(record)
    bases = [tissue] if basis is None else [basis] if isinstance(basis, str) else list(basis)
    # without basis, each found column on the positions its own call read: an earlier call's spatial_key
    # (obsm['spatial_um']) where the last call read another (was: every column on the last call's)
    own_positions = {}
    if basis is None:
        from .tl import calls_by_key

        calls = calls_by_key(adata)
        for col in keys:        # a member of an obsm entry on the positions of the call that wrote it
            call = calls.get(base_of.get(col) or col)
            if isinstance(call, Mapping) and isinstance(call.get("graph"), Mapping):
                at = _positions_read(call)
                if at[0] in adata.obsm and (at[0], _dims_key(at[1])) != (tissue, _dims_key(dims)):
                    own_positions[col] = at

    def xy_of(b: str, spot_dims=None) -> np.ndarray:
        spot_dims = (dims if b == tissue else None) if spot_dims is None else spot_dims
        if spot_dims is not None:       # the two columns tl.domains read (spatial_dims), not the first two
            try:
                return np.asarray(dims_columns(adata.obsm[b], list(np.ravel(spot_dims))), dtype=np.float64)
            except (KeyError, ValueError, IndexError):
                # those two columns kept alone since (adata.obsm['spatial'] = adata.obsm['spatial'][['x', 'y']]
                # .to_numpy(), as squidpy takes them): the names or positions no longer apply, the two are x and y
                if np.ndim(adata.obsm[b]) != 2 or np.shape(adata.obsm[b])[1] != 2:
                    raise
        return np.asarray(as_x_y(adata.obsm[b], adata.obs), dtype=np.float64)[:, :2]    # y, x: taken as x, y

    # whether one stcore call (tl.domains, or a workflow's run: a group's too) found the drawn domains over all
    # these spots, so that a domain means the same on every slide
    made = record.get("labelling") if isinstance(record, Mapping) else None
    one_call = (isinstance(made, Mapping) and record.get("key") in keys + [b for b in base_of.values() if b]
                and int(made.get("n_spots", 0)) >= adata.n_obs)
    if slide_key is None:
        if _group_record(record) and SLIDE_KEY in adata.obs and adata.obs[SLIDE_KEY].nunique() > 1:
            slide_key = SLIDE_KEY   # a group's domains.h5ad: its slides share one frame (drawn over one another)
        else:
            # slides joined after each was clustered on its own (anndata.concat(..., label='library_id') of two
            # results): their domains are numbered each their own way and their spots share one frame; where
            # no stcore call found the drawn domains over all these spots (concat drops uns['stcore'], or keeps
            # one slide's with uns_merge='first'), slides laid side by side (each at its own offset) too
            slide_key = slide_column(adata, xy_of(tissue) if tissue in adata.obsm else None, side_by_side=not one_call)
            joined = (joined_without_label(adata, xy_of(tissue))
                      if slide_key is None and not one_call and tissue in adata.obsm else None)
            if joined:      # no column says which slide each spot came from: drawn and scored as one slide
                log.warning(f"{joined[0]}: their domains are drawn over one another and scored pooled, one slide's "
                            "domain '0' and another's as one where each slide was clustered on its own. Fix: join the "
                            "slides with anndata.concat(..., label='library_id') and draw them with "
                            "slide_key='library_id' (each scored on its own)")
    for col in keys + [c for c in (truth, slide_key) if c is not None]:
        if col not in adata.obs:
            entries = [e for e in user.obsm if _labellings(user, e) is not None]
            raise KeyError(f"obs['{col}'] is not in adata.obs (columns: {list(user.obs.columns)}"
                           + (f"; obsm entries of labels, a panel per column: {entries}" if entries else "") + ")")
    for b in bases:
        if b not in adata.obsm:
            fix = (f"; the positions tl.domains read are obsm['{tissue}']: basis='{tissue}'"
                   if tissue != b and tissue in adata.obsm else "")
            raise KeyError(f"obsm['{b}'] is not in adata.obsm (keys: {list(adata.obsm.keys())}){fix}")
    if truth is not None:           # what the workflow's qc job says of the same annotation, said here too
        if is_missing_label(adata.obs[truth]).all():    # the qc job refuses it; drawn here, nothing scored
            log.warning(f"truth column '{truth}' has no labels (all missing: empty, NA, NaN or None) on these "
                        f"{adata.n_obs} spots: nothing is scored. Fix: give the column of the annotation; an "
                        "annotation joined to the spots by id must name them as obs_names does (e.g. "
                        f"'{adata.obs_names[0]}'), or it matches none (labels.reindex(adata.obs_names) leaves NaN)")
        said, refusal = annotation_problems(adata.obs[truth], truth)
        tool = clustered_by(adata, truth)
        where = None if tool else coordinate_of_spots(adata, truth)
        if tool:                    # the qc job refuses it; a figure may compare two methods on purpose
            refusal = (f"truth column '{truth}' holds {tool}, not an annotation: the scores in the titles compare "
                       "the domains with another method's output")
        elif where:                 # the qc job refuses it too
            refusal = (f"truth column '{truth}' holds {where}, not an annotation: the scores in the titles compare "
                       "the domains with the slide's rows or columns")
            tool = where
        elif measured := measured_per_spot(adata, truth):       # the qc job refuses it too
            tool = measured
            refusal = (f"truth column '{truth}' holds {tool}, not an annotation: the scores in the titles compare "
                       "the domains with that quantity")
        if not refusal and slide_key is None and tissue in adata.obsm:      # the qc job's warning too
            unordered = unordered_annotation(xy_of(tissue), adata.obs[truth], truth)
            said = said + ([unordered] if unordered else [])
        for line in said + ([refusal + ("" if tool else ": the scores in the titles compare the domains with it")]
                            if refusal else []):
            log.warning(line)

    # Colours: the reference (annotation, else the first found column) in its own order, the rest matched.
    ref_col = truth if truth is not None else keys[0]
    palette, ref_colors = _reference_colors(adata, ref_col, keys, palette)
    # the columns as they are (not .to_numpy(): nullable integers with a missing label come out as 1.0, 2.0)
    reference = adata.obs[ref_col]

    panels = []                 # (basis, column, title, categories, colors, names)
    scores = {}
    # slides clustered each on its own number their domains each their own way: one slide's '0' is not
    # another's, so each slide's domains are matched to the annotation's colours on that slide alone and
    # drawn and listed under the slide's name ('a: 0'); a column of domains found as one is matched pooled (and
    # without an annotation each label keeps one colour)
    apart = {}
    if slide_key is not None and not one_call and truth is not None:
        slide_of = adata.obs[slide_key].astype(object).to_numpy()
        for col in keys:
            found = _labels(adata.obs[col])
            own = np.where((found == MISSING) | pd.isna(slide_of), MISSING,
                           pd.Series(slide_of).astype(str).to_numpy() + ": " + found)
            cats, colors, names = [], {}, {}
            for name in pd.unique(slide_of[pd.notna(slide_of)]):
                on = slide_of == name
                mine = [c for c in _categories(adata.obs[col][on]) if c != MISSING]
                got, matched = matched_colors(reference[on], ref_colors, found[on], mine, palette)
                for c in mine:
                    cats.append(f"{name}: {c}")
                    colors[f"{name}: {c}"] = got[c]
                    if c in matched:
                        names[f"{name}: {c}"] = matched[c]
            if (own == MISSING).any():
                cats.append(MISSING)
                colors[MISSING] = MISSING_COLOR
            apart[col] = (own.astype(object), cats, colors, names)
    titles = {}         # _made_by of each column, once: it reads every spot's id and label

    def made_by(col: str) -> str:
        if col not in titles:
            titles[col] = (_member_made_by(adata, *members[col], made_by) if col in members
                           else _made_by(adata, col))
        return titles[col]

    for b in bases:
        cols = ([truth] if truth is not None else []) + keys
        if slide_key is not None and b != tissue:
            cols.append(slide_key)
        for col in cols:
            values = adata.obs[col]
            cats = _categories(values)
            names = None
            if col == ref_col:
                colors = ref_colors
            elif col == slide_key and col not in keys:
                own = [c for c in cats if c != MISSING]
                pal = _palette(len(own))
                colors = {c: pal[i % len(pal)] for i, c in enumerate(own)} | {MISSING: MISSING_COLOR}
            elif col in apart:
                cats, colors, names = apart[col][1:]
            else:
                colors, names = matched_colors(reference, ref_colors, values, cats, palette)
            head = col + (made_by(col) if col in keys else "")
            if truth is not None and col in keys:
                if col not in scores:
                    # spots without a found domain (a subset's domains assigned back to the whole slide leaves
                    # NaN) are left out, as spots without an annotation are: not scored as one more domain
                    found = _labels(values)
                    with_domain = found != MISSING
                    if slide_key is None:
                        m = domain_metrics(adata.obs[truth][with_domain], found[with_domain])
                        scores[col] = {"ARI": float(m["ARI"]), "NMI": float(m["NMI"])}
                    else:
                        # each slide on its own, as the workflow's table scores a group's slides: slides
                        # clustered apart number their domains each their own way, and pooled, one slide's
                        # '3' and another's were scored as one domain
                        slide = adata.obs[slide_key].astype(object).to_numpy()
                        per = {}
                        for name in pd.unique(slide[pd.notna(slide)]):
                            on = with_domain & (slide == name)
                            m = domain_metrics(adata.obs[truth][on], found[on])
                            per[str(name)] = {"ARI": float(m["ARI"]), "NMI": float(m["NMI"])}
                        # the mean over the slides that have an annotation: a slide without one scores NaN
                        scored = [v for v in per.values() if np.isfinite(v["ARI"])]
                        scores[col] = {k: float(np.mean([v[k] for v in scored])) if scored else float("nan")
                                       for k in ("ARI", "NMI")}
                        scores[col]["per_slide"] = per
                    if not with_domain.all():
                        scores[col]["n_without_domain"] = int((~with_domain).sum())
                        log.warning("obs['%s'] holds no domain for %d of %d spots (NaN, as a subset's domains "
                                    "assigned back to the whole object leave them); they are left out of its scores",
                                    col, int((~with_domain).sum()), adata.n_obs)
                head = (f"{head}\nARI {scores[col]['ARI']:.3f}, NMI {scores[col]['NMI']:.3f}"
                        if np.isfinite(scores[col]["ARI"]) else f"{head}\nnot scored: no annotated spot")
                if "per_slide" in scores[col]:
                    per = scores[col]["per_slide"]
                    unscored = [name for name, v in per.items() if not np.isfinite(v["ARI"])]
                    head += (f" (mean of {len(per)} slides)" if not unscored else
                             f" ({len(per) - len(unscored)} of {len(per)} slides: {', '.join(unscored[:3])}"
                             f"{' ...' if len(unscored) > 3 else ''} {'has' if len(unscored) == 1 else 'have'} "
                             "no annotation)")
                if "n_without_domain" in scores[col]:
                    head += f" ({adata.n_obs - scores[col]['n_without_domain']} spots with a domain)"
            elif col == truth:
                head = col if col.lower() in ("annotation", "truth") else f"annotation: {col}"
            if b != tissue:
                of = base_of[col] if col in members else col      # a member's: that of the call that wrote it
                other = (_embedding_of_another_call(adata, of, b, made_by) if col in keys and of and of in adata.obs
                         else None)
                head = f"{head}\non {b.removeprefix('X_')}" + (f" of {other}" if other else "")
            panels.append((b, col, head, cats, colors, names))

    # Each basis starts a row of its own; a row wraps after ncols panels.
    ncols = max(1, ncols)
    rows = []
    for b in bases:
        mine = [p for p in panels if p[0] == b]
        rows += [mine[i:i + ncols] for i in range(0, len(mine), ncols)]
    ncols = max(len(r) for r in rows)
    legend_w = 1.7 if legend else 0.0
    fig, grid = plt.subplots(len(rows), ncols, figsize=(ncols * (panel_size + legend_w), len(rows) * panel_size + 0.6),
                             squeeze=False)
    axes, panels = [], []
    for r, row in enumerate(rows):
        for c in range(ncols):
            if c < len(row):
                axes.append(grid[r, c])
                panels.append(row[c])
            else:
                grid[r, c].remove()
    neighbours = [(grid[r, c], grid[r, c + 1]) for r, row in enumerate(rows) for c in range(len(row) - 1)]
    last = [grid[r, len(row) - 1] for r, row in enumerate(rows)]
    image = _tissue_image(adata, library_id, img_key) if img and slide_key is None else None
    positions = {}
    for b in bases:
        xy = xy_of(b)
        if b == tissue and slide_key is not None:
            xy = side_by_side(xy, adata.obs[slide_key].to_numpy())
        positions[b] = xy
    maps = {}   # tissue maps: (positions, spot diameter, image or None, square bins) by (obsm key, spatial_dims)

    def tissue_map(b: str, spot_dims, xy: np.ndarray):
        if (b, _dims_key(spot_dims)) not in maps:
            from .peers import grid_shape

            pic = image if image is not None and _image_in_register(image, xy, b) else None
            if pic is not None:
                xy = xy * pic[1]
                d = pic[2] * pic[1] if np.isfinite(pic[2]) else _spot_diameter(xy, panel_size)
            else:
                d = _spot_diameter(xy, panel_size)
            # bins of a square grid (Stereo-seq's, Visium HD's) drawn as discs left a gap at every corner
            # (1 - pi/4, 21%, of the tissue white, or the image through it); they are squares, which tile it:
            # without an image of the grid's side, over one of the spot diameter its scale factors give, where
            # that is the grid's side (Visium HD's bins); spots narrower than their grid (legacy ST's discs,
            # half their spacing) stay discs
            square = None           # the angle of the grid's rows, where drawn as squares
            if grid_shape(xy) == "square":
                spacing, angle = _square_grid(xy)
                if pic is None or abs(d / spacing - 1) <= BIN_SIDE_TOL:
                    square = angle
            maps[(b, _dims_key(spot_dims))] = (xy, d, pic, square)
        return maps[(b, _dims_key(spot_dims))]

    if tissue in positions:
        positions[tissue] = tissue_map(tissue, dims, positions[tissue])[0]
    used = []
    for ax, (b, col, head, cats, colors, names) in zip(axes, panels):
        labels = apart[col][0] if col in apart else _labels(adata.obs[col])
        if b == tissue:
            if col in own_positions:        # its own call's positions, not the last call's
                at, at_dims = own_positions[col]
                xy = xy_of(at, at_dims)
                xy = side_by_side(xy, adata.obs[slide_key].to_numpy()) if slide_key is not None else xy
                xy, spatial_d, pic, square = tissue_map(at, at_dims, xy)
            else:
                xy, spatial_d, pic, square = maps[(tissue, _dims_key(dims))]
            if pic is not None:
                ax.imshow(pic[0])
            _draw(ax, xy, labels, colors, diameter=spatial_d * size, marker_size=0, square=square)
            if slide_key is not None:
                _name_slides(ax, xy, adata.obs[slide_key])
            ax.set_aspect("equal")
            ax.set_anchor("W")              # spare width of the slot to the right, where the legend is
            ax.invert_yaxis()
        else:
            square = None           # an embedding: markers, discs
            _draw(ax, positions[b], labels, colors, diameter=None,
                  marker_size=size * min(20.0, 120000 / max(adata.n_obs, 1)))
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(head, fontsize=9)
        if legend:
            _legend(ax, cats, colors, names, square=square is not None)
        used.append(ax)
    for (_b, col, _head, _cats, colors, _names) in panels:
        # a slide's own colours: no one colour per domain; a member of an obsm entry has no obs column to colour
        if (col in keys or col == truth) and col not in apart and col not in members:
            _store_colors(user, col, colors)
    heading = fig.suptitle(title, fontsize=11) if title else None
    fig.tight_layout()
    if legend:
        _room_for_legends(fig, neighbours, ncols, last=last)
    _close_up(fig, [[grid[r, c] for c in range(len(row))] for r, row in enumerate(rows)], title=heading)
    fig.stcore_scores = scores
    if save:
        from pathlib import Path

        suffix = "" if save is True else str(save)
        # a string naming a folder ('/tmp/a.png', 'figs/a.png') is the path itself, not a suffix of
        # 'domains' under figdir (scanpy's reading would give figdir/'domains/tmp/a.png')
        as_path = save is not True and ("/" in suffix or "\\" in suffix)
        stem = suffix if as_path else f"domains{suffix}"
        given = Path(stem).suffix.lstrip(".").lower()      # save='.png', as in scanpy: domains.png
        name = stem if given in fig.canvas.get_supported_filetypes() else \
            f"{stem}{sc.settings.plot_suffix}.{sc.settings.file_format_figs}"
        target = Path(name).expanduser() if as_path else Path(sc.settings.figdir) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, bbox_inches="tight")   # dpi: rcParams['savefig.dpi']
    if show is None:
        show = bool(sc.settings.autoshow) and not return_fig
    if show:
        plt.show()
        return None
    return fig if return_fig else used
