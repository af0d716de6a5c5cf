"""Slides trained as one: the QC'd slides of a group (the sample sheet's ``group`` column)
joined into one AnnData on the genes they all share.

The joined slide keeps every slide's own coordinates and says which slide each spot comes from
in ``obs['slide']``; the stages after it (HVG on the group, one graph made of the slides' own
graphs with no edge between slides, one model, one clustering of all spots) read that column
where space matters (:func:`slide_codes`).  Spot ids become ``<slide>:<spot>``.  Nothing is
larger than the sum of the slides.
"""
from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import InputError

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["SLIDE_KEY", "TRUTH_KEY", "join_slides", "annotation_labels", "group_annotation", "slide_codes", "slide_names"]

log = logging.getLogger(__name__)

#: A group whose slides share fewer genes than MIN_SHARED_GENES and than MIN_SHARED_SHARE of the
#: genes of its slide with the fewest is refused: slides of other panels (STARmap's 166 genes and
#: osmFISH's 33 share 11).  A panel within a larger one (a targeted slide beside a whole
#: transcriptome) shares all of the smaller; DLPFC 151510's 500 genes share 289 with 151673's 5,000.
MIN_SHARED_GENES = 50
MIN_SHARED_SHARE = 0.5

SLIDE_KEY = "slide"       # obs column: the slide each spot of a group comes from
TRUTH_KEY = "truth"       # obs column of a group: each slide's annotation (set by the steps that score it)


def _check_each_slide_once(slides: dict[str, ad.AnnData], group: str) -> None:
    """Slides of a group read from the same data (one input_sha256: a file named twice in the sample
    sheet, or copied) are refused: the group would train one slide with itself, and its
    integration scores (iLISI, domains_shared, layers_consistent) would be those of a slide with its
    copy, 1.0 whatever the domains."""
    seen: dict[str, str] = {}
    for name, a in slides.items():
        digest = str(a.uns.get("provenance", {}).get("input_sha256", ""))
        if digest and digest in seen:
            first = seen[digest]
            paths = {n: str(slides[n].uns.get("provenance", {}).get("input_path", "")) for n in (first, name)}
            raise InputError(f"group '{group}': slides {first} and {name} read the same data ('{paths[first]}' and "
                             f"'{paths[name]}', input_sha256 {digest[:12]}...): the group would train one slide with "
                             "itself, and its integration scores (iLISI, domains_shared, layers_consistent) would be "
                             "1.0 whatever the domains",
                             fix=f"give each slide once in the group: check the paths of {first} and {name} in the sample "
                                 "sheet (a file named twice, or copied under two names?)")
        seen.setdefault(digest, name)


def join_slides(slides: dict[str, ad.AnnData], truths: dict[str, str] | None, group: str,
                values: str = "counts") -> tuple[ad.AnnData, dict]:
    """One AnnData of the slides (name -> QC'd slide, sheet order) on the genes every slide has,
    in the first slide's gene order, and a report: spots per slide, genes shared, and for each
    slide the genes left out because another slide lacks them (logged with a few names).

    ``truths``: each slide's annotation column ('' for none), copied to ``obs['truth']``
    (:func:`annotation_labels`: a label a slide writes otherwise than an earlier slide ('layer_1' for
    'Layer1') as that slide writes it, a warning; listed in the report's ``labels_respelled``).
    None: no ``obs['truth']``, as the workflow's group job joins them, so that the group's training
    does not depend on the annotation; the steps that score it add it (:func:`group_annotation`).
    Raises :class:`InputError` for a group of one slide, a slide without gene names (var_names
    anndata's default index, :func:`_check_gene_names`), slides naming their genes in other ways
    (:func:`_check_gene_kinds`, :func:`_check_gene_case`, :func:`_check_gene_versions`), sharing no
    gene, or only a few
    (:data:`MIN_SHARED_GENES`), and ``values`` (the slides' sample sheet values, one for the group)
    normalised to other totals on each slide (:func:`_check_normalised_alike`)."""
    import anndata as ad

    names = list(slides)
    if len(names) < 2:
        raise InputError(f"group '{group}' has one slide ({', '.join(names)}); a group trains several slides as one",
                         fix="give another slide the same group in the sample sheet, or leave this slide's "
                             "group cell empty")
    _check_each_slide_once(slides, group)
    for name in names:
        _check_gene_names(slides[name], name, group)
    shared = set(slides[names[0]].var_names)
    for name in names[1:]:
        shared &= set(slides[name].var_names)
    genes = [g for g in slides[names[0]].var_names if g in shared]
    _check_gene_kinds(slides, group, len(genes))
    _check_gene_case(slides, group, len(genes))
    _check_gene_versions(slides, group, len(genes))
    if not genes:
        raise InputError(f"group '{group}': slides {', '.join(names)} share no gene name (after QC)",
                         fix="group slides measured on the same genes (same species and gene naming, e.g. all "
                             "symbols or all Ensembl ids), or leave the group cell empty")
    smallest = min(names, key=lambda n: slides[n].n_vars)
    if len(genes) < MIN_SHARED_GENES and len(genes) < MIN_SHARED_SHARE * slides[smallest].n_vars:
        each = ", ".join(f"{n} {slides[n].n_vars}" for n in names)
        raise InputError(f"group '{group}': slides {', '.join(names)} share only {len(genes)} genes (after QC), "
                         f"{len(genes) / slides[smallest].n_vars:.0%} of those of {smallest}, the slide with the fewest "
                         f"(genes: {each}): measured on other gene panels, the group would be trained on those "
                         f"{len(genes)} alone", fix="group slides measured on the same genes (one panel or the whole "
                                                    "transcriptome), or leave the group cell empty (each slide runs "
                                                    "alone as well)")
    if values in ("normalized", "log_normalized"):
        _check_normalised_alike(slides, genes, group, log=values == "log_normalized")
    report = {"group": group, "shared_genes": len(genes), "slides": {}}
    labels, respelled = {}, {}
    if truths is not None:
        from .validate import check_truth

        for name in names:        # each slide's annotation, as its qc job checks it (a changed truth column reruns no qc)
            if truths.get(name):
                check_truth(slides[name], truths[name], after_qc=True)
        labels, respelled = annotation_labels({name: slides[name].obs for name in names}, truths, group)
    parts = []
    for name in names:
        a = slides[name]
        left_out = [g for g in a.var_names if g not in shared]
        if left_out:
            log.info("group %s: slide %s: %d of its %d genes are not on every slide of the group and are left out "
                     "(e.g. %s)", group, name, len(left_out), a.n_vars, ", ".join(map(str, left_out[:5])))
        report["slides"][name] = {"spots": int(a.n_obs), "genes": int(a.n_vars), "genes_left_out": len(left_out)}
        if respelled.get(name):
            report["slides"][name]["labels_respelled"] = respelled[name]
        x = a[:, genes].X
        obs = pd.DataFrame({SLIDE_KEY: name} | ({TRUTH_KEY: labels[name]} if truths is not None else {}),
                           index=[f"{name}:{s}" for s in a.obs_names])
        parts.append(ad.AnnData(X=sp.csr_matrix(x), obs=obs, obsm={"spatial": np.asarray(a.obsm["spatial"], float)}))
    joined = ad.concat(parts, join="inner", merge=None)
    joined.var_names = pd.Index(genes).astype(str)
    joined.obs[SLIDE_KEY] = pd.Categorical(joined.obs[SLIDE_KEY], categories=names)
    if truths is not None:
        joined.obs[TRUTH_KEY] = pd.Categorical(joined.obs[TRUTH_KEY])     # None / NaN: not annotated
    digests = {n: str(slides[n].uns.get("provenance", {}).get("input_sha256", "")) for n in names}
    joined.uns["provenance"] = {
        "input_path": ";".join(str(slides[n].uns.get("provenance", {}).get("input_path", "")) for n in names),
        "format": "group",
        "input_sha256": hashlib.sha256("".join(digests[n] for n in names).encode()).hexdigest(),
    }
    report["input_sha256"] = joined.uns["provenance"]["input_sha256"]
    log.info("group %s: %d slides, %d spots, %d shared genes", group, len(names), joined.n_obs, len(genes))
    return joined, report


def annotation_labels(obs: dict[str, pd.DataFrame], truths: dict[str, str], group: str
                      ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, str]]]:
    """Each slide's annotation as the group holds it (``obs``: slide -> its obs, sheet order;
    ``truths``: slide -> its annotation column, '' for none): its labels as text, NaN where it has
    none; a label written otherwise than an earlier slide writes it as that slide writes it
    (:func:`_one_spelling`, a warning), and a warning where the slides name their layers otherwise.
    Returns (slide -> labels, slide -> {its spelling: the group's})."""
    labels = {name: _labels_as_text(frame[truths[name]]) if truths.get(name)
              else np.full(len(frame), np.nan, dtype=object) for name, frame in obs.items()}
    respelled = _one_spelling(labels, group)
    _warn_of_labels_named_otherwise(labels, group)
    return labels, respelled


def group_annotation(obs: dict[str, pd.DataFrame], truths: dict[str, str], group: str) -> pd.Series:
    """The group's annotation, ``obs['truth']`` of :func:`join_slides` given ``truths``, as one
    categorical Series indexed by the group's spot ids (``<slide>:<spot>``)."""
    labels, _ = annotation_labels(obs, truths, group)
    index = [f"{name}:{s}" for name, frame in obs.items() for s in frame.index]
    values = np.concatenate([labels[name] for name in obs]) if obs else np.array([], dtype=object)
    return pd.Series(pd.Categorical(values), index=index, name=TRUTH_KEY)


def _check_gene_names(adata: ad.AnnData, name: str, group: str) -> None:
    """Refuse a slide whose gene names are anndata's default index ('0', '1', ..., in order; QC
    may have left some out: numbers in increasing order, at least a quarter of those up to the
    largest): such names are positions, and the group's slides would be joined gene by position
    whatever each measured.  Gene ids that are numbers (Entrez ids) are sparser than that."""
    names = pd.Index(adata.var_names).astype(str)
    if not len(names) or not all(n.isdigit() and (n == "0" or not n.startswith("0")) for n in names):
        return
    numbers = np.array([int(n) for n in names])
    if bool((np.diff(numbers) <= 0).any()) or numbers[-1] + 1 > 4 * len(numbers):
        return
    path = adata.uns.get("provenance", {}).get("input_path") or None
    raise InputError(f"slide of group '{group}' has no gene names: its var_names are anndata's default index "
                     f"('{names[0]}', '{names[1] if len(names) > 1 else names[0]}', ..., '{names[-1]}'), positions "
                     "rather than genes, so the group's slides would be joined gene by position whatever genes each "
                     "measured", sample=name, path=path,
                     fix="store the gene names in var_names (e.g. adata.var_names = adata.var['gene_symbols'], the "
                         "column of var that holds them) and write the file again")


ENSEMBL_ID = re.compile(r"ENS[A-Z]*G\d{6,}(\.\d+)?")     # ENSG00000141510, ENSMUSG00000020122.9


def _ensembl_share(names) -> float:
    """Share of ``names`` that are Ensembl gene ids (``ENSG...``, ``ENSMUSG...``, with or without a version)."""
    names = [str(n) for n in names]
    return sum(bool(ENSEMBL_ID.fullmatch(n)) for n in names) / len(names) if names else 0.0


def _check_gene_kinds(slides: dict[str, ad.AnnData], group: str, n_shared: int) -> None:
    """Refuse a group whose slides name their genes differently: some by Ensembl ids (most names
    ``ENSG...``), others by gene symbols.  They share no gene name, or only the few genes the
    symbol slides name by their id (genes without a symbol), and the group would be trained on
    those alone.  The fix names the ``var`` column of a slide that holds most of the names the other
    slides give (10x's ``gene_ids``, a ``gene_symbols``)."""
    ids = [n for n in slides if _ensembl_share(slides[n].var_names) > 0.5]
    symbols = [n for n in slides if n not in ids]
    if not ids or not symbols or n_shared >= 0.5 * min(slides[n].n_vars for n in slides):
        return          # one kind, or names alike for the most part (half of them ids, on each slide)
    first = {n: str(slides[n].var_names[0]) for n in slides}
    column, best = None, n_shared          # a var column holding the names the other slides give
    for kind, others, what in ((ids, symbols, "gene symbols"), (symbols, ids, "Ensembl ids")):
        theirs = set().union(*(map(str, slides[n].var_names) for n in others))
        for name in kind:
            for col in slides[name].var.columns:
                values = slides[name].var[col]
                if values.dtype.kind not in "OSU" and not isinstance(values.dtype, pd.CategoricalDtype):
                    continue
                found = len(set(values.astype(str)) & theirs)
                if found > best:
                    column, best = (name, col, what), found
    fix = "store the same kind of gene name in the var_names of every slide of the group (all symbols or all " \
          "Ensembl ids) and write the files again"
    if column:
        fix += (f": var['{column[1]}'] of slide {column[0]} holds its {column[2]} (adata.var_names = "
                f"adata.var['{column[1]}'].astype(str); adata.var_names_make_unique())")
    raise InputError(f"group '{group}': slide{'s' if len(ids) > 1 else ''} {', '.join(ids)} name{'' if len(ids) > 1 else 's'} "
                     f"genes by Ensembl ids (e.g. '{first[ids[0]]}') and slide{'s' if len(symbols) > 1 else ''} "
                     f"{', '.join(symbols)} by gene symbols (e.g. '{first[symbols[0]]}'): they share {n_shared} gene "
                     f"name{'' if n_shared == 1 else 's'} (of {min(slides[n].n_vars for n in slides)} on the smallest "
                     "slide), so the group would be trained on those alone", fix=fix)


#: Slides of a group whose normalised values (``values`` normalized or log_normalized) differ in
#: their spots' median total over the shared genes by more than this factor were normalised to
#: other totals (10,000 on one, a million, CPM, on another).
MAX_TOTAL_RATIO = 3.0


def _check_normalised_alike(slides: dict[str, ad.AnnData], genes: list, group: str, *, log: bool) -> None:
    """Refuse a group whose slides' normalised values were normalised to other totals (scanpy's
    normalize_total to 10,000 on one slide, counts per million on another): the median over spots
    of each spot's total over the shared genes (of expm1 of the values where ``log``) differs by more
    than :data:`MAX_TOTAL_RATIO`; one model would see the same expression that many times higher on
    one slide (log values: shifted by the log of it), a slide effect in every gene."""
    medians = {}
    for name, a in slides.items():
        x = sp.csr_matrix(a[:, genes].X, dtype=np.float64)
        if log:
            x.data = np.expm1(x.data)
        totals = np.asarray(x.sum(axis=1)).ravel()
        totals = totals[totals > 0]
        if totals.size:
            medians[name] = float(np.median(totals))
    if len(medians) < 2 or max(medians.values()) <= MAX_TOTAL_RATIO * min(medians.values()):
        return
    low, high = min(medians, key=medians.get), max(medians, key=medians.get)
    ratio = medians[high] / medians[low]
    raise InputError(f"group '{group}': its slides' {'log-' if log else ''}normalised values were normalised to other "
                     "totals (median spot total over the shared genes" + (", after expm1" if log else "") + ": "
                     + ", ".join(f"{n} {v:,.0f}" if v >= 100 else f"{n} {v:.3g}" for n, v in medians.items())
                     + f"): one model would see the same expression {ratio:,.0f} times higher on {high} than on {low}"
                     + (f" (every log value {np.log(ratio):.1f} higher)" if log else ""),
                     fix="normalise every slide of the group to one total from its raw counts (scanpy: "
                         "sc.pp.normalize_total(adata, target_sum=1e4)" + ("; sc.pp.log1p(adata)" if log else "")
                         + "), or give the raw counts with values counts")


def _trained_on(n_shared: int) -> str:
    """What the group would be joined on, as the gene-name checks end their message."""
    return ("so the group would be trained on those written alike only" if n_shared
            else "so the slides of the group could not be joined")


VERSION = re.compile(r"\.\d+$")     # an Ensembl id's version: ENSG00000141510.17


def _check_gene_versions(slides: dict[str, ad.AnnData], group: str, n_shared: int) -> None:
    """Refuse a group whose slides name their genes by Ensembl ids with a version on some
    ('ENSG00000187608.10', GENCODE's) and without on others (Space Ranger's): without the versions
    they share at least twice as many genes, and ten more, than as written (as written: none,
    or the few of one version)."""
    names = list(slides)
    if not all(_ensembl_share(slides[n].var_names) > 0.5 for n in names):
        return
    bare = {n: {VERSION.sub("", str(g)) for g in slides[n].var_names} for n in names}
    common = set.intersection(*bare.values())
    if len(common) < 2 * n_shared or len(common) < n_shared + 10:
        return
    versioned = [n for n in names if sum(bool(VERSION.search(str(g))) for g in slides[n].var_names) > slides[n].n_vars / 2]
    example = {n: str(slides[n].var_names[0]) for n in names}
    raise InputError(f"group '{group}': slide{'s' if len(versioned) > 1 else ''} {', '.join(versioned)} write"
                     f"{'' if len(versioned) > 1 else 's'} Ensembl ids with a version ("
                     + ", ".join(f"'{example[n]}' on {n}" for n in names)
                     + f"): they share {n_shared} gene name{'' if n_shared == 1 else 's'} as written, {len(common)} "
                     f"without the versions, {_trained_on(n_shared)}",
                     fix="write the ids without their version on every slide of the group (adata.var_names = "
                         "adata.var_names.str.replace(r'\\.\\d+$', '', regex=True); adata.var_names_make_unique()) "
                         "and write the files again")


def _check_gene_case(slides: dict[str, ad.AnnData], group: str, n_shared: int) -> None:
    """Refuse a group whose slides write the same genes in other case ('Gfap' on one slide, 'GFAP'
    on another: mouse symbols made upper case, as for human orthologs): matched whatever the case,
    they share at least twice as many genes, and ten more, than as written, and the group would be
    trained on the few written alike ('H19')."""
    names = list(slides)
    lower = {n: {str(g).lower(): str(g) for g in slides[n].var_names} for n in names}
    common = set(lower[names[0]])
    for n in names[1:]:
        common &= set(lower[n])
    if len(common) < 2 * n_shared or len(common) < n_shared + 10:
        return
    example = next((k for k in sorted(common) if len({lower[n][k] for n in names}) > 1), None)
    written = ", ".join(f"'{lower[n][example]}' on {n}" for n in names) if example else ""
    raise InputError(f"group '{group}': its slides write the same genes in other case ({written}): they share "
                     f"{n_shared} gene name{'' if n_shared == 1 else 's'} as written, {len(common)} whatever the case, "
                     f"{_trained_on(n_shared)}",
                     fix="write each gene's name alike on every slide of the group (as its species writes it: "
                         "mouse 'Gfap', human 'GFAP'; not upper-cased for orthologs) and write the files again; "
                         "slides of two species: leave the group cell empty")


def _one_spelling(labels: dict[str, np.ndarray], group: str) -> dict[str, dict[str, str]]:
    """Each slide's annotation (``labels``: slide -> its labels as text, sheet order) with a label
    another slide of the group writes otherwise (:func:`stcore.evaluate.label_key`: 'layer_1' on one slide,
    'Layer1' on the first) written as the slide that names it first writes it, in place; a warning
    names them.  The group's annotation holds every slide's labels in one column: written two ways,
    one layer was two labels, left out of ``layers_consistent`` (which compares the labels found on
    every slide) and drawn in two colours.  A slide that itself holds two such spellings keeps its
    labels as they are ('layer3' beside 'Layer3' may be meant as another label).
    Returns slide -> {its spelling: the group's}."""
    from .evaluate import is_missing_label, label_key

    first: dict[str, str] = {}          # key -> the spelling of the first slide that holds it
    out: dict[str, dict[str, str]] = {}
    for name, values in labels.items():
        present = values[~is_missing_label(values)]
        spellings: dict[str, set] = {}
        for label in {str(v).strip() for v in present}:
            spellings.setdefault(label_key(label), set()).add(label)
        change = {}
        for key, written in spellings.items():
            if len(written) > 1:        # two spellings on one slide: kept apart
                continue
            (label,) = written
            ours = first.setdefault(key, label)
            if ours != label:
                change[label] = ours
        if change:
            stripped = np.array([str(v).strip() if isinstance(v, str) else v for v in values], dtype=object)
            for label, ours in change.items():
                values[stripped == label] = ours
            out[name] = dict(sorted(change.items()))
            log.warning("group %s: slide %s writes %d annotation label%s otherwise than the slide before it (%s); "
                        "each is taken as that label, so that a layer is one label of the group (written two ways, it "
                        "was two: left out of layers_consistent and drawn in two colours). Fix: write the labels "
                        "alike on every slide of the group", group, name, len(change), "" if len(change) == 1 else "s",
                        ", ".join(f"'{k}' as '{v}'" for k, v in list(out[name].items())[:5])
                        + (", ..." if len(change) > 5 else ""))
    return out


def _warn_of_labels_named_otherwise(labels: dict[str, np.ndarray], group: str) -> None:
    """A warning where the annotated slides of a group share fewer labels than
    :data:`stcore.evaluate.MIN_SHARED_LABELS_SHARE` of those of the slide with the fewest ('Layer1',
    ... on one slide, 'L1', ... on another): their layers are named otherwise, and the group's
    ``layers_consistent`` is NaN."""
    from .evaluate import MIN_SHARED_LABELS_SHARE, is_missing_label

    sets = {n: {str(v).strip() for v in values[~is_missing_label(values)]} for n, values in labels.items()}
    sets = {n: s for n, s in sets.items() if s}
    if len(sets) < 2:
        return
    common = set.intersection(*sets.values())
    if len(common) >= MIN_SHARED_LABELS_SHARE * min(len(s) for s in sets.values()):
        return
    shown = "; ".join(f"{n}: {', '.join(sorted(s)[:4])}{', ...' if len(s) > 4 else ''}" for n, s in sets.items())
    log.warning("group %s: the annotations of its slides share %d label%s (%s) of %s: they name the layers otherwise "
                "(%s), so layers_consistent, which compares the labels found on every annotated slide, is left out "
                "(NaN). Fix: write the labels alike on every slide of the group", group, len(common),
                "" if len(common) == 1 else "s", ", ".join(sorted(common)) or "none",
                ", ".join(f"{n}'s {len(s)}" for n, s in sets.items()), shown)


def _labels_as_text(labels: pd.Series) -> np.ndarray:
    """A slide's annotation as text, missing labels left missing: the slides of a group may store
    theirs as numbers, text or categories (1, 1.0 and '1' all become '1'), and one column of
    the group holds them all."""
    def text(value):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    values = labels.astype("object")
    missing = values.isna().to_numpy()
    out = np.full(len(values), np.nan, dtype=object)
    out[~missing] = [text(v) for v in values.to_numpy()[~missing]]
    return out


def slide_names(obs: pd.DataFrame) -> np.ndarray | None:
    """The slide of every spot of a group by name (``obs['slide']``, as text), or None for one slide."""
    if SLIDE_KEY not in obs:
        return None
    return obs[SLIDE_KEY].astype(str).to_numpy()


def slide_codes(obs: pd.DataFrame) -> np.ndarray | None:
    """Integer slide code of every spot of a group (``obs['slide']``), or None for one slide."""
    if SLIDE_KEY not in obs:
        return None
    return pd.Categorical(obs[SLIDE_KEY]).codes.astype(np.int64)
