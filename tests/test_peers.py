"""The peer methods (stcore/peers.py, the `peers` extra) through the whole DAG on a tiny simulated
slide, and what holds without them: a missing extra is one line naming the install command."""
from __future__ import annotations

import importlib.util
import logging
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from test_workflow import TINY, snakemake, write_workdir

INSTALL = "pip install -e '.[peers]'"
INSTALL_OF = {"cellcharter": "pip install -e '.[cellcharter]'",     # peers with an extra of their own
              "banksy": "pip install -e '.[banksy]'"}
# peer: (import name, few-epoch settings for its train.peer block)
PEERS = {
    "graphst_pkg": ("GraphST", {"epochs": 20, "end": 1.0}),   # Leiden scan 1.0 down to 0.1 by 0.01
    "stagate": ("STAGATE_pyG", {"n_epochs": 20}),
    "spagcn": ("SpaGCN", {"max_epochs": 20}),
    "cellcharter": ("cellcharter", {}),
    "banksy": ("banksy", {}),
}
OWN = ("graphst_pkg", "spagcn", "cellcharter", "banksy")          # peers with labels of their own: a second row each
SHEET = ("sample\tpath\tformat\tn_clusters\ttruth\n"
         "tiny_a\tresults/simulated/tiny_a.h5ad\th5ad\t3\tdomain\n")


def _installed(peer: str) -> bool:
    return importlib.util.find_spec(PEERS[peer][0]) is not None


def _need(peer: str) -> None:
    if not _installed(peer):
        pytest.skip(f"{peer} needs '{PEERS[peer][0]}': {INSTALL_OF.get(peer, INSTALL)}")


@pytest.fixture(scope="module")
def peers_run(tmp_path_factory):
    """One Snakemake run with every installed peer next to the pipeline's own graphst."""
    present = [p for p in PEERS if _installed(p)]
    if not present:
        pytest.skip(f"no peer package is installed: {INSTALL}")
    methods = {"graphst": {"model": "graphst"}}
    for peer in present:
        methods[peer] = {"model": peer, "train": {"peer": PEERS[peer][1]}}
        if peer in OWN:
            methods[f"{peer}_own"] = {"train_from": peer, "cluster": {"algorithm": "own"}}
    config = dict(TINY, simulate={"tiny_a": TINY["simulate"]["tiny_a"]}, methods=methods)
    workdir = write_workdir(tmp_path_factory.mktemp("peers"), config, SHEET)
    snakemake(workdir, "--cores", "2")
    return workdir, pd.read_csv(workdir / "results" / "table.tsv", sep="\t")


@pytest.mark.slow
@pytest.mark.parametrize("peer", list(PEERS))
def test_peer_runs_through_the_dag(peer, peers_run):
    _need(peer)
    workdir, table = peers_run
    rows = table[table["method"] == peer]
    assert len(rows) == 1 and np.isfinite(rows["ARI"]).all() and rows["ARI"].between(-1, 1).all()
    assert rows["method_package"].iloc[0].startswith(("GraphST", "stagate-modern", "spagcn-modern", "cellcharter", "pybanksy"))
    from stcore.methods import MethodResult

    res = MethodResult.load(workdir / "results" / "tiny_a" / peer / "seed0" / "train.npz")
    assert res.embedding.shape[0] == rows["spots"].iloc[0] and np.isfinite(res.embedding).all()
    assert not res.has_decoder
    if peer in OWN:
        own = table[table["method"] == f"{peer}_own"]
        assert len(own) == 1 and np.isfinite(own["ARI"]).all() and own["trained_by"].iloc[0] == peer
        labels = pd.read_csv(workdir / "results" / "tiny_a" / f"{peer}_own" / "seed0" / "labels.tsv", sep="\t")
        assert np.array_equal(labels["domain"].to_numpy(), res.labels)          # its own labels, unchanged
    else:
        assert res.labels is None
    assert table.loc[table["method"] == "graphst", "ARI"].notna().all()          # the pipeline's own row too


@pytest.mark.parametrize("peer", list(PEERS))
def test_missing_extra_is_one_line_naming_the_install_command(peer, monkeypatch, tmp_path):
    """Without the package, the method's train job fails with one line: what is missing and
    the command that installs it (stcore.workflow.run_step turns the InputError into that line)."""
    from stcore.errors import InputError
    from stcore.methods import REGISTRY, fit
    from stcore.workflow import run_step

    module, install = PEERS[peer][0], INSTALL_OF.get(peer, INSTALL)
    assert REGISTRY[peer].requires == module and REGISTRY[peer].install == install
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    x = np.ones((5, 3))
    with pytest.raises(InputError, match=re.escape(f"Fix: {install}")):
        fit(peer, x, None, np.zeros((5, 2)), {}, 0, counts=x, n_clusters=2)

    log = tmp_path / "train.log"
    sm = SimpleNamespace(log=[str(log)], wildcards=SimpleNamespace(sample="s1"))
    with pytest.raises(SystemExit) as exit_:
        run_step(sm, lambda _: fit(peer, x, None, np.zeros((5, 2)), {}, 0, counts=x, n_clusters=2))
    logging.getLogger().handlers.clear()
    assert exit_.value.code == 1
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert f"sample 's1': method '{peer}' needs the Python package '{module}'" in lines[0]
    assert lines[0].endswith(f"Fix: {install}")


def test_fit_gives_counts_and_n_clusters_only_to_a_method_whose_facts_ask_for_them(monkeypatch):
    from dataclasses import replace

    from stcore.methods import REGISTRY, Method, MethodResult, fit
    from stcore.registry import METHODS

    seen = {}

    def five(x, adj, coords, params, seed):
        seen["five"] = True
        return MethodResult(embedding=np.zeros((2, 1)))

    def seven(x, adj, coords, params, seed, *, counts=None, n_clusters=None):
        seen["seven"] = (counts, n_clusters)
        return MethodResult(embedding=np.zeros((2, 1)))

    monkeypatch.setitem(REGISTRY, "five", Method(five, METHODS["graphst"]))
    monkeypatch.setitem(REGISTRY, "seven", Method(seven, replace(METHODS["cellcharter"], requires=None)))
    fit("five", None, None, None, {}, 0, counts="c", n_clusters=4)
    fit("seven", None, None, None, {}, 0, counts="c", n_clusters=4)
    assert seen == {"five": True, "seven": ("c", 4)}


def test_unknown_peer_setting_is_an_input_error():
    from stcore.errors import InputError
    from stcore.peers import fit_spagcn, fit_stagate

    with pytest.raises(InputError, match=r"unknown train.peer setting\(s\) \['epochs'\].*n_epochs"):
        fit_stagate(None, None, np.zeros((3, 2)), {"peer": {"epochs": 5}}, 0, counts=np.ones((3, 2)))
    with pytest.raises(InputError, match="searches for a number of domains"):
        fit_spagcn(None, None, np.zeros((3, 2)), {}, 0, counts=np.ones((3, 2)))


def test_stagate_radius_and_grid_shape(hex_coords):
    from stcore.peers import grid_shape, stagate_radius

    hexes = hex_coords * 137.0                                   # Visium-like pixel spacing
    assert stagate_radius(hexes) == pytest.approx(137.0 * 1.08)  # the ring of six, whole
    assert grid_shape(hexes) == "hexagon"
    ii, jj = np.meshgrid(np.arange(12.0), np.arange(12.0))
    assert grid_shape(np.column_stack([ii.ravel(), jj.ravel()])) == "square"
    assert grid_shape(np.random.default_rng(0).uniform(size=(200, 2))) == "none"


def test_banksy_settings_follow_the_slide_and_the_seed(hex_coords):
    """BANKSY through the registry: its authors' settings by what a location is (Visium-like
    hexagonal spots: lambda 0.2, 18 neighbours; scattered cells: 0.8, 15), a 20-PC embedding,
    its own Leiden domains, and the same output for the same seed."""
    if importlib.util.find_spec("banksy") is None:
        pytest.skip(f"banksy needs 'banksy': {INSTALL_OF['banksy']}")
    from stcore.methods import fit
    from stcore.peers import banksy_kind
    from stcore.simulate import SimParams, simulate_slide

    assert banksy_kind(hex_coords * 137.0) == "spots"
    assert banksy_kind(np.random.default_rng(0).uniform(size=(300, 2))) == "cells"
    slide = simulate_slide(SimParams(n_spots=400, n_genes=300, markers_per_domain=40, n_layers=3, n_regions=0,
                                     marker_fold=2.0, seed=3))
    xy, counts = slide.obsm["spatial"], slide.X
    assert banksy_kind(xy) == "spots"
    runs = [fit("banksy", None, None, xy, {"peer": {"n_top_genes": 200}}, seed, counts=counts, n_clusters=3)
            for seed in (0, 0, 1)]
    first = runs[0]
    assert first.embedding.shape == (slide.n_obs, 20) and np.isfinite(first.embedding).all()
    assert first.labels.shape == (slide.n_obs,) and first.machine["method_package"] == "pybanksy 1.3.5"
    assert first.machine["cpu_kernels"] == "none (no torch)"          # numpy alone: torch not imported
    assert np.array_equal(first.embedding, runs[1].embedding) and np.array_equal(first.labels, runs[1].labels)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(slide.obs["domain"], first.labels) > 0.5       # three clear layers
    none = fit("banksy", None, None, xy, {"peer": {"own_clustering": "none", "kind": "cells", "lambda": 0.5}}, 0,
               counts=counts, n_clusters=None)
    assert none.labels is None and none.embedding.shape == (slide.n_obs, 20)
    from stcore.errors import InputError

    with pytest.raises(InputError, match="lambda 1.5 is outside"):
        fit("banksy", None, None, xy, {"peer": {"lambda": 1.5}}, 0, counts=counts, n_clusters=3)


@pytest.mark.parametrize("peer", ["banksy", "cellcharter"])
def test_an_own_clustering_nobody_reports_is_skipped_and_auto_runs(peer):
    """BANKSY's Leiden search and CellCharter's mixture run only when given the number of domains:
    without it the embedding is the same to the bit and there are no own labels, so the
    recommended answer (their embeddings clustered by the shared step) costs no search and runs
    with ``n_clusters='auto'`` (which once reached the search as the text 'auto')."""
    _need(peer)
    import stcore
    from stcore.methods import fit
    from stcore.simulate import SimParams, simulate_slide

    slide = simulate_slide(SimParams(n_spots=400, n_genes=300, markers_per_domain=40, n_layers=3, n_regions=0,
                                     marker_fold=2.0, seed=3))
    xy, counts = slide.obsm["spatial"], slide.X
    searched = fit(peer, None, None, xy, {}, 0, counts=counts, n_clusters=3)
    skipped = fit(peer, None, None, xy, {}, 0, counts=counts)
    assert searched.labels is not None and skipped.labels is None
    assert np.array_equal(searched.embedding, skipped.embedding)
    found = stcore.tl.domains(slide, n_clusters="auto", method=peer, seed=0, key_added="found", copy=True,
                              progress=False)
    chosen = found.uns["stcore"]["n_clusters"]
    assert chosen["by"] == "stability" and found.obs["found"].nunique() == chosen["chosen"]
    from stcore.peers import settings_of

    # its record shows what it read: its own settings with its package's defaults, not the graph model's epochs
    assert found.uns["stcore"]["train"] == {"model": peer, "peer": settings_of(peer, {})}
    with pytest.raises(stcore.errors.InputError, match=f"n_clusters 'auto' with method '{peer}': its own clustering"):
        stcore.tl.domains(slide, n_clusters="auto", method=peer, cluster={"algorithm": "own"}, key_added="own",
                          copy=True, progress=False)


def test_a_banksy_matrix_that_cannot_fit_is_refused_before_it_is_made(monkeypatch):
    """pybanksy makes its matrix dense (about 10 GB at 50,000 spots x 2,000 genes): where the memory
    free is less than it needs, one line with the fix instead of a job killed without a word."""
    _need("banksy")
    import stcore.workflow
    from stcore.errors import InputError
    from stcore.methods import fit
    from stcore.peers import banksy_memory_mb
    from stcore.simulate import SimParams, simulate_slide

    slide = simulate_slide(SimParams(n_spots=300, n_genes=100, n_layers=3, n_regions=0, seed=3))
    n = slide.n_obs
    need = banksy_memory_mb(n, 100)
    monkeypatch.setattr(stcore.workflow, "available_memory_mb", lambda: need / 2)
    with pytest.raises(InputError, match=rf"method 'banksy': {n} spots x 100 genes need about 0\.0 GB .* free here.*"
                                         r"Fix: run it where more is free"):
        fit("banksy", None, None, slide.obsm["spatial"], {}, 0, counts=slide.X)
    monkeypatch.setattr(stcore.workflow, "available_memory_mb", lambda: need * 2)
    assert fit("banksy", None, None, slide.obsm["spatial"], {}, 0, counts=slide.X).embedding.shape == (n, 20)


def test_a_banksy_matrix_over_memory_for_its_max_m_names_the_default_max_m_that_fits(monkeypatch):
    """A max_m above its default (1) widens pybanksy's matrix by one block of the genes each; where the
    default's matrix fits in the memory free and the given one's does not, the refusal's fix names setting
    max_m back (its fix named fewer genes only, though the slide's every gene fits at the default)."""
    _need("banksy")
    import stcore.workflow
    from stcore.errors import InputError
    from stcore.methods import fit
    from stcore.peers import BANKSY_DEFAULTS, banksy_memory_mb
    from stcore.simulate import SimParams, simulate_slide

    slide = simulate_slide(SimParams(n_spots=300, n_genes=100, n_layers=3, n_regions=0, seed=3))
    n, default_m = slide.n_obs, BANKSY_DEFAULTS["max_m"]
    free = banksy_memory_mb(n, 100, default_m) * 1.5          # the default's matrix fits, max_m + 2 blocks do not
    assert banksy_memory_mb(n, 100, default_m + 2) > free
    monkeypatch.setattr(stcore.workflow, "available_memory_mb", lambda: free)
    with pytest.raises(InputError, match=rf"Fix: run it where more is free .*set its max_m back to {default_m}, its "
                                         rf"default .*'max_m': {default_m}\}}.*give banksy \d+ genes or fewer"):
        fit("banksy", None, None, slide.obsm["spatial"], {"peer": {"max_m": default_m + 2}}, 0, counts=slide.X)
    monkeypatch.setattr(stcore.workflow, "available_memory_mb", lambda: banksy_memory_mb(n, 100, default_m) / 2)
    with pytest.raises(InputError) as at_default:      # at the default itself, or where it does not fit either: genes
        fit("banksy", None, None, slide.obsm["spatial"], {"peer": {"max_m": default_m + 2}}, 0, counts=slide.X)
    assert "max_m back" not in str(at_default.value) and "genes or fewer" in str(at_default.value)


@pytest.mark.parametrize("peer", ["banksy", "cellcharter"])
def test_a_peer_on_log_normalised_values_preprocesses_them_as_their_counts(peer):
    """A peer normalises and logs the counts itself, as its tutorial does; given a slide's
    log-normalised values (values='log_normalized': normalize_total then log1p), it is given the
    normalised values they are the log of, and finds what it finds on the raw counts of the same
    genes.  They were handed over as counts, logged a second time (CellCharter) or normalised
    by their sums of logs (BANKSY): other features and other domains, without a word."""
    _need(peer)
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score

    import stcore
    from slides import tiny_slide

    counts = tiny_slide(n_side=14, n_genes=40, domains=3)
    logged = counts.copy()
    sc.pp.normalize_total(logged, target_sum=1e4)
    sc.pp.log1p(logged)
    # every gene kept on both (40 genes, fewer than n_top_genes): the same genes reach the peer
    got = {values: stcore.tl.domains(slide, n_clusters=3, method=peer, values=values, key_added="found", copy=True)
           for values, slide in (("counts", counts), ("log_normalized", logged))}
    emb = {values: np.asarray(a.obsm[f"X_{peer}"]) for values, a in got.items()}
    assert np.allclose(emb["log_normalized"], emb["counts"], rtol=1e-3, atol=1e-3 * np.abs(emb["counts"]).max())
    assert adjusted_rand_score(got["counts"].obs["found"], got["log_normalized"].obs["found"]) == 1.0


def test_the_train_step_gives_a_peer_the_values_its_hvg_file_says_it_holds(tmp_path):
    """The workflow's train step reads what hvg.h5ad's counts layer holds (its uns['hvg']['values'],
    the sample sheet's values) and gives a peer log-normalised values unlogged, as tl.domains does:
    BANKSY's features are those of the same slide's raw counts."""
    _need("banksy")
    import scanpy as sc
    import scipy.sparse as sp

    from slides import script, tiny_slide
    from stcore.hvg import HVGParams, run_hvg
    from stcore.methods import MethodResult

    counts = tiny_slide(n_side=14, n_genes=40, domains=3)
    logged = counts.copy()
    sc.pp.normalize_total(logged, target_sum=1e4)
    sc.pp.log1p(logged)
    sp.save_npz(tmp_path / "graph.npz", sp.identity(counts.n_obs, format="csr"))
    emb = {}
    for values, slide in (("counts", counts), ("log_normalized", logged)):
        hvg = tmp_path / f"hvg_{values}.h5ad"
        run_hvg(slide, HVGParams(n_top_genes=3000, flavor="seurat", values=values)).write_h5ad(hvg)
        out = SimpleNamespace(npz=tmp_path / f"{values}.npz", losses=tmp_path / f"{values}.tsv")
        sm = SimpleNamespace(input=SimpleNamespace(h5ad=str(hvg), graph=str(tmp_path / "graph.npz")), output=out,
                             params=SimpleNamespace(model="banksy", train={}, seed=0), threads=1)
        script("train").main(sm)
        emb[values] = MethodResult.load(out.npz).embedding
    assert np.allclose(emb["log_normalized"], emb["counts"], rtol=1e-3, atol=1e-3 * np.abs(emb["counts"]).max())


def test_cellcharter_warns_of_spots_its_delaunay_graph_leaves_without_a_neighbour(caplog):
    """Spots that share a position (a cell twice in the data: the osmFISH file holds 476) are
    triangulated once: CellCharter's Delaunay graph leaves the others of each position without a
    neighbour, and they are put in domains apart from their twin (423 of osmFISH's 476 pairs).
    That is said, with the fix; a slide without shared positions gets no such line."""
    _need("cellcharter")
    from slides import tiny_slide
    from stcore.methods import fit

    slide = tiny_slide(n_side=10, n_genes=40)
    xy, counts = np.asarray(slide.obsm["spatial"], dtype=float), slide.X.tocsr()
    with caplog.at_level(logging.WARNING, logger="stcore.peers"):
        fit("cellcharter", None, None, xy, {}, 0, counts=counts)
    assert "Delaunay" not in caplog.text
    import scipy.sparse as sp

    twice = np.r_[np.arange(slide.n_obs), [5, 17, 42]]          # three spots repeated under new rows
    with caplog.at_level(logging.WARNING, logger="stcore.peers"):
        fit("cellcharter", None, None, xy[twice], {}, 0, counts=sp.csr_matrix(counts[twice]))
    assert ("method 'cellcharter': 3 of the 103 spots share their position with another spot and have no "
            "neighbour in its Delaunay graph") in caplog.text
    assert "Fix: drop the repeated spots" in caplog.text


@pytest.mark.parametrize("line", ["x_only", "diagonal"])
def test_cellcharter_on_spots_along_one_line_is_one_message(line):
    """Positions that all lie on one straight line (a transect; a second coordinate lost, or a copy
    of the first, in a conversion) have no Delaunay triangulation: the fit stopped with Qhull's
    'QH6154 Qhull precision error: Initial simplex is flat'; it is now one line naming the method,
    the cause and the fix (the workflow's, and in a notebook's tl.domains, where no config names the
    method's slides: its fix named only the config's samples:)."""
    _need("cellcharter")
    from slides import tiny_slide
    from stcore.errors import InputError
    from stcore.methods import fit

    slide = tiny_slide(n_side=8, n_genes=40)
    x = np.arange(slide.n_obs) * 100.0
    xy = np.column_stack([x, np.zeros_like(x) if line == "x_only" else x])
    with pytest.raises(InputError, match=r"method 'cellcharter': the spots' 64 distinct positions lie on one "
                                         r"straight line.*Fix: check that obsm\['spatial'\] holds both coordinates"
                                         r".*or leave cellcharter out for this slide \(the method's samples: in the "
                                         r"config; in tl\.domains, a method= without it\)$"):
        fit("cellcharter", None, None, xy, {}, 0, counts=slide.X.tocsr())


def test_a_grid_with_spots_missing_is_a_grid_still():
    """The kind of slide (BANKSY's lambda 0.2 / 18 neighbours on spots, 0.8 / 15 on cells; SpaGCN's
    refinement) is read from the spots' grid.  A Visium slide with spots missing (drawn out by a
    subsample, QC, holes in the tissue) was taken for single cells from 10% missing, without a word:
    on DLPFC 151673 with half its spots drawn out, BANKSY ARI 0.305 and 0.281 (seeds 0, 1) where
    its settings for spots give 0.420 and 0.429.  The rings of a grid stay where they are."""
    from stcore.peers import banksy_kind, grid_shape

    rng = np.random.default_rng(0)
    ii, jj = np.meshgrid(np.arange(40.0), np.arange(40.0))
    hexes = np.column_stack([(ii + 0.5 * (jj % 2)).ravel(), (jj * np.sqrt(3) / 2).ravel()]) * 137.0
    hexes += rng.normal(0, 0.5, hexes.shape)                    # a pixel's jitter, as Visium's positions
    squares = np.column_stack([ii.ravel(), jj.ravel()]) * 16.0
    for missing in (0.1, 0.3, 0.5):
        kept = rng.random(len(hexes)) > missing
        assert grid_shape(hexes[kept]) == "hexagon", missing
        assert banksy_kind(hexes[kept]) == "spots", missing
        assert grid_shape(squares[kept]) == "square", missing
    assert grid_shape(np.rint(hexes / 137.0 * 25)) == "hexagon"        # rounded to pixels of a smaller image
    assert grid_shape(np.column_stack([2 * ii.ravel() + jj.ravel() % 2, jj.ravel()])) == "square"  # array_col, array_row
    cells = rng.uniform(0, 4000, size=(1500, 2))
    assert grid_shape(cells) == "none" and banksy_kind(cells) == "cells"
    assert grid_shape(hexes / 137.0 * 10 + rng.normal(0, 1.0, hexes.shape)) == "none"    # beads packed, not a grid
