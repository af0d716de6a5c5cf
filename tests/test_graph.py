import numpy as np
import pytest
import scipy.sparse as sp

from stcore.graph import GraphParams, gcn_norm, spatial_adjacency, knn_indices, mean_operator


def test_knn_graph_symmetric_binary_no_self_loops(hex_coords):
    a = spatial_adjacency(hex_coords, GraphParams(n_neighbors=3))
    assert sp.issparse(a) and a.shape == (144, 144)
    assert (a != a.T).nnz == 0
    assert set(np.unique(a.data)) == {1.0}
    assert a.diagonal().sum() == 0
    assert (np.diff(a.indptr) >= 3).all()  # every spot keeps its own 3 neighbours


def test_knn_ties_are_broken_by_spot_index(hex_coords):
    """On the hexagon six neighbours tie; the kept ones are the nearest, then the lowest ids."""
    idx, dist = knn_indices(hex_coords, 3)
    for i in range(len(hex_coords)):
        d = np.linalg.norm(hex_coords - hex_coords[i], axis=1)
        d[i] = np.inf
        order = np.lexsort((np.arange(len(d)), np.round(d, 9)))
        assert list(idx[i]) == list(order[:3])
    assert np.allclose(dist, np.sort(dist, axis=1))
    again, _ = knn_indices(hex_coords.copy(), 3)
    assert np.array_equal(idx, again)


def test_gcn_norm_matches_formula_and_is_symmetric(hex_coords):
    a = spatial_adjacency(hex_coords)
    an = gcn_norm(a)
    dense = a.toarray() + np.eye(a.shape[0])
    d = dense.sum(1)
    expected = dense / np.sqrt(np.outer(d, d))
    assert np.allclose(an.toarray(), expected, atol=1e-6)
    assert abs(an - an.T).max() < 1e-7
    # the largest eigenvalue of D^-1/2 (A+I) D^-1/2 is 1
    top = sp.linalg.eigsh(an.astype(np.float64), k=1, which="LA", return_eigenvectors=False)[0]
    assert top == pytest.approx(1.0, abs=1e-6)


def test_mean_operator_rows_average_self_and_neighbours(hex_coords):
    a = spatial_adjacency(hex_coords)
    m = mean_operator(a)
    assert np.allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0)
    i = 40
    cols = set(m[i].indices)
    assert cols == set(a[i].indices) | {i}


def test_radius_mode(hex_coords):
    a = spatial_adjacency(hex_coords, GraphParams(mode="radius", radius=1.01))
    assert (a != a.T).nnz == 0
    assert np.diff(a.indptr).max() == 6  # inner hexagon spots have six neighbours at distance 1


def test_a_radius_given_without_radius_mode_is_refused(hex_coords):
    """A radius given alone (as squidpy's spatial_neighbors takes it) was ignored: the knn graph was built."""
    import anndata as ad

    import stcore
    from stcore.errors import InputError

    with pytest.raises(InputError, match=r"^graph\.radius 1\.01 is given, but graph\.mode is knn, which joins each spot "
                                         r"to its 3 nearest: the radius would be ignored\. Fix: set graph\.mode radius"):
        spatial_adjacency(hex_coords, GraphParams(radius=1.01))
    adata = ad.AnnData(np.ones((len(hex_coords), 2), np.float32), obsm={"spatial": np.asarray(hex_coords, float)})
    with pytest.raises(InputError, match=r"mode='radius'\), or leave graph\.radius unset$"):
        stcore.gr.spatial_graph(adata, radius=1.01)
    stcore.gr.spatial_graph(adata, mode="radius", radius=1.01)
    assert np.diff(adata.obsp["spatial_connectivities"].indptr).max() == 6


def test_a_groups_radius_messages_name_the_slide(hex_coords, caplog):
    """A group's slides each get their own radius graph; its warning of spots left without a
    neighbour, and its refusal of a radius that joins none, named no slide ('graph.radius 300 leaves
    1 of 3639 spots without a neighbour' of a group of two)."""
    import logging

    from stcore.errors import InputError

    caplog.set_level(logging.WARNING, logger="stcore")
    far = np.vstack([hex_coords, [[40.0, 40.0]]])                          # one spot away from the rest
    coords = np.vstack([hex_coords, far])
    slides = np.array(["a"] * len(hex_coords) + ["b"] * len(far))
    spatial_adjacency(coords, GraphParams(mode="radius", radius=1.01), slides=slides)
    said = [r.getMessage() for r in caplog.records if "without a neighbour" in r.getMessage()]
    assert said == ["slide b: graph.radius 1.01 leaves 1 of 145 spots without a neighbour (median nearest-neighbour "
                    "distance 1)"], said
    with pytest.raises(InputError, match=r"^slide a: graph\.radius 0\.5 joins no two spots"):
        spatial_adjacency(coords, GraphParams(mode="radius", radius=0.5), slides=slides)


def test_too_few_spots_is_an_error():
    with pytest.raises(ValueError, match="neighbours"):
        knn_indices(np.random.rand(3, 2), 3)


def test_the_graph_job_warns_of_coordinates_in_another_order_than_the_spots(tmp_path, caplog):
    """A slide written with its positions in another order than its spots (a positions table's
    .to_numpy() not reindexed to obs_names, then write_h5ad): the workflow's graph joined spots at
    random without a word, as tl.domains did before it warned.  The graph job now gives
    tl.domains' warning, naming the sample; the slide in its own order says nothing."""
    import logging
    from types import SimpleNamespace

    from stcore.hvg import HVGParams, run_hvg
    from stcore.qc import QCParams, prepare_slide
    from slides import script, tiny_slide, write

    caplog.set_level(logging.WARNING, logger="stcore")
    graph = script("graph")
    slide = tiny_slide(n_side=16)                                  # 256 spots; fewer are not judged
    order = np.random.default_rng(0).permutation(slide.n_obs)
    for name, xy in (("s1", slide.obsm["spatial"]), ("moved", slide.obsm["spatial"][order])):
        slide.obsm["spatial"] = xy
        adata, _ = prepare_slide(str(write(slide, tmp_path / f"{name}.h5ad")), "h5ad", QCParams(), truth="domain",
                                 n_clusters=2)
        hvg = tmp_path / f"{name}.hvg.h5ad"
        run_hvg(adata, HVGParams(n_top_genes=30)).write_h5ad(hvg)
        sm = SimpleNamespace(input=SimpleNamespace(h5ad=str(hvg)), params=SimpleNamespace(graph={}),
                             output=SimpleNamespace(npz=str(tmp_path / f"{name}.npz"),
                                                    params=tmp_path / f"{name}.json"),
                             wildcards=SimpleNamespace(sample=name))
        graph.main(sm)
    said = [r.getMessage() for r in caplog.records if "the expression shows no spatial pattern" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("sample 'moved': the expression shows no spatial pattern over "
                                                 "obsm['spatial']"), said
    # the qc job's warning of the annotation, whose labels the moved coordinates put at other spots, names both
    truth = [r.getMessage() for r in caplog.records if "truth column 'domain' shows no spatial pattern" in r.getMessage()]
    assert len(truth) == 1 and truth[0].startswith(str(tmp_path / "moved.h5ad")) and "or the coordinates" in truth[0]
    assert "Fix: store the coordinates in the spots' order" in said[0]


def test_a_weak_spatial_pattern_is_not_taken_for_coordinates_in_another_order():
    """The demo's sim_scatter: domains in space, expression noisy (Moran's I 0.10 of its first
    components; the expression alone scores ARI 0.004).  A fixed bar of 0.15 warned of it in every
    demo run; the bar is what spots at random positions reach on the slide's graph (0.065 there),
    which its coordinates in another order stay below."""
    from stcore.hvg import HVGParams, run_hvg
    from stcore.simulate import SimParams, simulate_slide
    from stcore.validate import random_pattern_limit, spatial_pattern

    slide = run_hvg(simulate_slide(SimParams(n_spots=1500, layout="scatter", n_layers=4, n_regions=1, seed=3)),
                    HVGParams(n_top_genes=3000))
    xy = np.asarray(slide.obsm["spatial"])
    adj = spatial_adjacency(xy, GraphParams())
    assert spatial_pattern(slide.X, adj) > random_pattern_limit(adj)
    moved = spatial_adjacency(xy[np.random.default_rng(0).permutation(len(xy))], GraphParams())
    assert spatial_pattern(slide.X, moved) < random_pattern_limit(moved)
