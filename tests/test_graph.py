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


def test_too_few_spots_is_an_error():
    with pytest.raises(ValueError, match="neighbours"):
        knn_indices(np.random.rand(3, 2), 3)
