"""Each rewrite that makes training fast computes the same numbers as the plain form.

Plain forms are written out here with dense matrices on small slides, in float64 where the
comparison should be tight; the fast forms are the ones stcore uses.
"""
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from conftest import need_data, run_in_fresh_python
from torch import nn

from stcore.cluster import pca_scores, refine
from stcore.graph import gcn_norm, spatial_adjacency, knn_indices, mean_operator
from stcore.model import (BilinearDiscriminator, GraphContrastiveAE, SparseOperator, readout,
                          reconstruction_sse, reconstruction_sse_plain, row_permutation, spmm,
                          to_sparse_operator, to_torch_sparse)
from stcore.train import _squared_norm, input_pca


def _graph(hex_coords):
    adj = spatial_adjacency(hex_coords)
    return adj, gcn_norm(adj).toarray().astype(np.float64), mean_operator(adj).toarray().astype(np.float64)


def test_row_shuffle_commutes_with_the_first_layer():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 30, generator=gen, dtype=torch.float64)
    w1 = torch.randn(30, 8, generator=gen, dtype=torch.float64)
    perm = row_permutation(50, gen)
    assert not torch.equal(perm, torch.arange(50))
    torch.testing.assert_close(x[perm] @ w1, (x @ w1)[perm], rtol=1e-12, atol=1e-12)


def test_decoder_product_order(hex_coords):
    _, a_hat, _ = _graph(hex_coords)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(len(hex_coords), 8, generator=gen, dtype=torch.float64)
    w2 = torch.randn(8, 40, generator=gen, dtype=torch.float64)
    a = torch.from_numpy(a_hat)
    torch.testing.assert_close(a @ (z @ w2), (a @ z) @ w2, rtol=1e-10, atol=1e-10)
    # and through the sparse operator used in training (float32)
    op = to_sparse_operator(sp.csr_matrix(a_hat))
    torch.testing.assert_close(spmm(op, z.float()) @ w2.float(), (a @ (z @ w2)).float(), rtol=1e-4, atol=1e-4)


def test_expanded_squared_error_value_and_gradients(hex_coords):
    gen = torch.Generator().manual_seed(2)
    n, g, d = len(hex_coords), 40, 8
    x = torch.rand(n, g, generator=gen, dtype=torch.float64)
    u = torch.randn(n, d, generator=gen, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(d, g, generator=gen, dtype=torch.float64, requires_grad=True)
    plain = F.mse_loss(u @ w2, x, reduction="sum")
    assert torch.allclose(plain, reconstruction_sse_plain(u, w2, x))
    g_plain = torch.autograd.grad(plain, [u, w2])
    fast = reconstruction_sse(u, w2, x @ w2.T, float((x ** 2).sum()))
    g_fast = torch.autograd.grad(fast, [u, w2])
    torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-9)
    for a, b in zip(g_fast, g_plain):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_fused_first_layer_product_and_its_gradients():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(60, 30, generator=gen, dtype=torch.float64)
    w1 = torch.randn(30, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(8, 30, generator=gen, dtype=torch.float64, requires_grad=True)
    up = torch.randn(60, 8, generator=gen, dtype=torch.float64)
    uq = torch.randn(60, 8, generator=gen, dtype=torch.float64)
    both = x @ torch.cat([w1, w2.T], dim=1)
    torch.testing.assert_close(both[:, :8], x @ w1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(both[:, 8:], x @ w2.T, rtol=1e-12, atol=1e-12)
    fused = torch.autograd.grad((both[:, :8] * up).sum() + (both[:, 8:] * uq).sum(), [w1, w2])
    plain = torch.autograd.grad(((x @ w1) * up).sum() + ((x @ w2.T) * uq).sum(), [w1, w2])
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_sparse_operator_product_and_gradient_equal_dense(hex_coords):
    _, _, r = _graph(hex_coords)                       # row-normalised: not symmetric
    assert not np.allclose(r, r.T)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(len(hex_coords), 6, generator=gen, requires_grad=True)
    w = torch.randn(len(hex_coords), 6, generator=gen)
    y = spmm(to_sparse_operator(sp.csr_matrix(r)), x)
    (gx,) = torch.autograd.grad((y * w).sum(), x)
    rd = torch.from_numpy(r).float()
    torch.testing.assert_close(y, rd @ x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx, rd.T @ w, rtol=1e-5, atol=1e-5)


def test_int32_operator_indices_give_the_int64_products(hex_coords):
    """Operators hold int32 indices (a third less memory than int64); the products and
    gradients equal those with int64 indices (the same bits on the AMD EPYC it was measured on;
    the bound leaves room for a CPU whose sparse kernel orders the sum by index width)."""
    _, _, r = _graph(hex_coords)
    op = to_sparse_operator(sp.csr_matrix(r))
    assert op.csr.crow_indices().dtype == torch.int32 and op.csr_t.col_indices().dtype == torch.int32
    wide = SparseOperator(*(torch.sparse_csr_tensor(t.crow_indices().long(), t.col_indices().long(), t.values(),
                                                    t.shape) for t in (op.csr, op.csr_t)))
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(len(hex_coords), 6, generator=gen, requires_grad=True)
    w = torch.randn(len(hex_coords), 6, generator=gen)
    outs = []
    for o in (op, wide):
        y = spmm(o, x)
        outs.append((y, *torch.autograd.grad((y * w).sum(), x)))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_discriminator_equals_torch_bilinear():
    gen = torch.Generator().manual_seed(5)
    disc = BilinearDiscriminator(8, gen)
    nn.init.normal_(disc.bilinear.bias, generator=gen)
    s, p, q = (torch.randn(30, 8, generator=gen) for _ in range(3))
    expected = torch.cat([disc.bilinear(p, s), disc.bilinear(q, s)], dim=1)
    torch.testing.assert_close(disc(s, p, q), expected, rtol=1e-5, atol=1e-5)


def test_model_forward_and_loss_equal_the_plain_model(hex_coords):
    """The whole forward pass (fused product, shared shuffle, batched sparse products,
    expanded loss) against the plain dense model, value and gradients."""
    adj, a_hat, r = _graph(hex_coords)
    n, g, d = len(hex_coords), 25, 8
    gen = torch.Generator().manual_seed(6)
    x = torch.rand(n, g, generator=gen)
    model = GraphContrastiveAE(g, d, generator=gen)
    perm = row_permutation(n, gen)
    out = model(x, to_sparse_operator(gcn_norm(adj)), to_sparse_operator(mean_operator(adj)), perm)
    loss = model.loss(out, float((x.double() ** 2).sum()), g).total
    grads = torch.autograd.grad(loss, list(model.parameters()))

    a, rr = torch.from_numpy(a_hat).float(), torch.from_numpy(r).float()
    w1, w2 = model.weight1, model.weight2
    bil = model.discriminator.bilinear
    z = a @ (x @ w1)
    zc = a @ (x[perm] @ w1)
    h = a @ (z @ w2)                                   # the N x G reconstruction, formed
    e, ec = F.relu(z), F.relu(zc)
    s = torch.sigmoid(F.normalize(rr @ e, dim=1))
    sc = torch.sigmoid(F.normalize(rr @ ec, dim=1))
    lg = torch.cat([bil(e, s), bil(ec, s)], 1)
    lgc = torch.cat([bil(ec, sc), bil(e, sc)], 1)
    t = torch.zeros_like(lg)
    t[:, 0] = 1
    plain = 10 * F.mse_loss(h, x) + F.binary_cross_entropy_with_logits(lg, t) + F.binary_cross_entropy_with_logits(lgc, t)
    plain_grads = torch.autograd.grad(plain, list(model.parameters()))
    torch.testing.assert_close(out.latent, z, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.logits, lg, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(loss, plain, rtol=1e-4, atol=1e-5)
    for fast_g, plain_g in zip(grads, plain_grads):
        torch.testing.assert_close(fast_g, plain_g, rtol=1e-3, atol=1e-5)


def test_coo_and_operator_inputs_give_the_same_model_output(hex_coords):
    adj = spatial_adjacency(hex_coords)
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(len(hex_coords), 12, generator=gen)
    model = GraphContrastiveAE(12, 4, generator=gen)
    perm = row_permutation(len(hex_coords), gen)
    a = model(x, to_torch_sparse(gcn_norm(adj)), to_torch_sparse(mean_operator(adj)), perm)
    b = model(x, to_sparse_operator(gcn_norm(adj)), to_sparse_operator(mean_operator(adj)), perm)
    for f in ("latent", "decoded", "logits", "logits_corrupt", "x_w2t"):
        torch.testing.assert_close(getattr(a, f), getattr(b, f), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tied", [False, True])
def test_sparse_features_give_the_dense_model_output_and_gradients(hex_coords, tied):
    """X [W1, W2ᵀ] and its weight gradient as sparse products over X's non-zeros equal the
    dense product; ||X||² from the stored values equals the dense sum."""
    from stcore.train import SPARSE_FEATURES_MAX_DENSITY, _features

    adj = spatial_adjacency(hex_coords)
    rng = np.random.default_rng(9)
    n, g = len(hex_coords), 40
    x = sp.random(n, g, density=0.1, format="csr", random_state=rng, dtype=np.float32) * 5
    a_hat, r_op = to_sparse_operator(gcn_norm(adj)), to_sparse_operator(mean_operator(adj))
    xs, sq_s = _features(x, torch.device("cpu"))
    xd, sq_d = _features(x.toarray(), torch.device("cpu"))
    assert isinstance(xs, SparseOperator) and isinstance(xd, torch.Tensor)
    assert sq_s == pytest.approx(sq_d, rel=1e-6)
    # the same matrix stored with its first entry split into two halves at the same place
    assert x.indptr[1] > 0                                   # row 0 has an entry to split
    data = np.r_[x.data[:1] / 2, x.data[:1] / 2, x.data[1:]]
    indices = np.r_[x.indices[:1], x.indices]
    indptr = np.r_[0, x.indptr[1:] + 1]
    doubled = sp.csr_matrix((data, indices, indptr), shape=x.shape)
    assert not doubled.has_canonical_format
    assert _features(doubled, torch.device("cpu"))[1] == pytest.approx(sq_d, rel=1e-6)
    dense_again, _ = _features(sp.csr_matrix(np.ones((n, g), np.float32)), torch.device("cpu"))
    assert isinstance(dense_again, torch.Tensor) and SPARSE_FEATURES_MAX_DENSITY < 1
    results = []
    for feats, sq in ((xs, sq_s), (xd, sq_d)):
        gen = torch.Generator().manual_seed(10)
        model = GraphContrastiveAE(g, 8, tied_decoder=tied, generator=gen)
        out = model(feats, a_hat, r_op, row_permutation(n, gen))
        loss = model.loss(out, sq, g).total
        results.append((out, loss, torch.autograd.grad(loss, list(model.parameters()))))
    (o_s, l_s, g_s), (o_d, l_d, g_d) = results
    for f in ("latent", "decoded", "logits", "logits_corrupt", "x_w2t"):
        torch.testing.assert_close(getattr(o_s, f), getattr(o_d, f), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(l_s, l_d, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_s, g_d):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_blocked_squared_norm_equals_plain():
    x = torch.rand(1000, 7, generator=torch.Generator().manual_seed(8))
    assert _squared_norm(x, rows=64) == pytest.approx(float((x.double() ** 2).sum()), rel=1e-12)


def _match_signs(a, b):
    return a * np.sign((a * b).sum(axis=0))


def test_pca_scores_of_a_factored_product_equal_sklearn_on_the_formed_product():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(9)
    left = rng.normal(size=(300, 12))
    right = rng.normal(size=(12, 80))
    ours = pca_scores(left, right, 5)
    ref = PCA(n_components=5, svd_solver="full").fit_transform(left @ right)
    np.testing.assert_allclose(np.abs((ours * ref).sum(0)) / (np.linalg.norm(ours, axis=0) * np.linalg.norm(ref, axis=0)),
                               1, atol=1e-10)
    np.testing.assert_allclose(_match_signs(ours, ref), ref, rtol=1e-8, atol=1e-8)


def test_input_pca_equals_sklearn_on_sparse_and_dense_input():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(10)
    x = sp.random(400, 60, density=0.2, random_state=11, format="csr") * 5
    ref = PCA(n_components=6, svd_solver="full").fit_transform(x.toarray())
    for inp in (x, x.toarray()):
        ours = input_pca(inp, 6)
        assert ours.shape == (400, 6) and ours.dtype == np.float32
        np.testing.assert_allclose(_match_signs(ours, ref), ref, rtol=1e-3, atol=1e-4)


def _brute_knn(coords, k):
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def test_knn_indices_match_brute_force_on_scattered_spots():
    rng = np.random.default_rng(12)
    coords = rng.uniform(0, 100, size=(300, 2))
    idx, dist = knn_indices(coords, 6)
    np.testing.assert_array_equal(idx, _brute_knn(coords, 6))
    np.testing.assert_allclose(dist, np.linalg.norm(coords[idx] - coords[:, None], axis=2))


def test_refine_matches_a_dense_majority_vote():
    rng = np.random.default_rng(13)
    coords = rng.uniform(0, 100, size=(200, 2))
    labels = rng.integers(0, 4, 200)
    k = 10
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]      # the spot itself first (distance 0)
    expected = []
    for i in range(200):
        counts = np.bincount(labels[order[i]], minlength=4)
        expected.append(labels[i] if counts[labels[i]] == counts.max() else counts.argmax())
    np.testing.assert_array_equal(refine(labels, coords, k), expected)


@pytest.mark.parametrize("what", ["knn_indices", "refine"])
def test_neighbour_steps_never_build_an_n_by_n_array(what):
    """At N = 20,000 an N x N array of even one byte per entry is 400 MB; the traced peak
    of numpy allocations must stay far below that."""
    n = 20_000
    rng = np.random.default_rng(14)
    coords = rng.uniform(0, 1000, size=(n, 2))
    labels = rng.integers(0, 7, n)
    tracemalloc.start()
    try:
        if what == "knn_indices":
            knn_indices(coords, 50, include_self=True)
        else:
            refine(labels, coords, 50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100e6, f"{what} allocated {peak / 1e6:.0f} MB at N={n}"


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_written_out_adam_gives_torch_adams_weights_bit_for_bit(hex_coords, weight_decay):
    """stcore.train.Adam against torch.optim.Adam over 30 training steps of the model: every
    weight and every loss identical, not merely close."""
    from stcore.train import Adam

    adj = spatial_adjacency(hex_coords)
    a_hat, r_op = to_sparse_operator(gcn_norm(adj)), to_sparse_operator(mean_operator(adj))
    x = torch.rand(len(hex_coords), 40, generator=torch.Generator().manual_seed(3))
    runs = []
    for make in (lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=weight_decay),
                 lambda ps: Adam(ps, lr=1e-2, weight_decay=weight_decay)):
        gen = torch.Generator().manual_seed(0)
        model = GraphContrastiveAE(40, 8, generator=gen)
        opt = make(model.parameters())
        losses = []
        for _ in range(30):
            out = model(x, a_hat, r_op, row_permutation(len(hex_coords), gen))
            loss = model.loss(out, float((x ** 2).sum()), 40).total
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append((losses, {k: v.clone() for k, v in model.state_dict().items()}))
    (loss_a, w_a), (loss_b, w_b) = runs
    assert loss_a == loss_b
    assert w_a.keys() == w_b.keys() and all(torch.equal(w_a[k], w_b[k]) for k in w_a)
    assert not torch.equal(w_b["weight1"], GraphContrastiveAE(40, 8, generator=torch.Generator().manual_seed(0)).weight1)


@pytest.mark.parametrize("features", ["dense", "sparse"])
def test_training_loss_gives_autograds_loss_and_gradients_bit_for_bit(hex_coords, features):
    """GraphContrastiveAE.training_loss (the pass written out into a workspace) against
    loss(forward(...)) with autograd's backward: the three losses and every weight's gradient
    identical, not merely close; twice with one workspace and different corruptions (the second
    call overwrites the first's buffers), on features dense and sparse (CSR with its transpose)."""
    from stcore.model import Workspace
    from stcore.train import _features

    adj = spatial_adjacency(hex_coords)
    a_hat, r_op = to_sparse_operator(gcn_norm(adj)), to_sparse_operator(mean_operator(adj))
    n, g = len(hex_coords), 60
    rng = np.random.default_rng(12)
    x = sp.random(n, g, density=0.1, format="csr", random_state=rng, dtype=np.float32) * 4
    feats, sq = _features(x if features == "sparse" else x.toarray(), torch.device("cpu"))
    assert isinstance(feats, SparseOperator) == (features == "sparse")
    workspace = Workspace()
    for step in range(2):
        runs = []
        for ws in (None, workspace):
            gen = torch.Generator().manual_seed(20 + step)
            model = GraphContrastiveAE(g, 16, generator=gen)
            parts = model.training_loss(feats, a_hat, r_op, row_permutation(n, gen), sq, g, ws)
            parts.total.backward()
            runs.append((parts, {k: p.grad for k, p in model.named_parameters()}))
        (plain, plain_g), (fast, fast_g) = runs
        for f in ("total", "reconstruction", "contrastive"):
            assert torch.equal(getattr(plain, f), getattr(fast, f)), f
        assert plain_g.keys() == fast_g.keys()
        for k in plain_g:
            assert torch.equal(plain_g[k], fast_g[k]), (k, float((plain_g[k] - fast_g[k]).abs().max()))
        assert float(plain_g["weight1"].abs().max()) > 0
    assert workspace.buffers, "the written-out pass was not taken"


def test_training_with_the_workspace_gives_the_plain_trainings_weights(hex_coords, monkeypatch):
    """fit_graph_model on the CPU (the written-out pass) against the same training through
    autograd: losses, embedding and reconstruction identical after 40 epochs."""
    import stcore.train as train

    adj = spatial_adjacency(hex_coords)
    x = np.random.default_rng(4).random((len(hex_coords), 30)).astype(np.float32)
    params = train.TrainParams(epochs=40, seed=3, device="cpu", log_every=0)
    fast = train.fit_graph_model(x, adj, params)
    monkeypatch.setattr(train, "Workspace", lambda: None)
    plain = train.fit_graph_model(x, adj, params)
    assert fast.losses.equals(plain.losses)
    for a, b in [(fast.embedding, plain.embedding), (fast.decoded, plain.decoded),
                 (fast.decoder_weight, plain.decoder_weight)]:
        assert np.array_equal(a, b)


def test_training_does_not_import_torch_dynamo():
    """The train step's fixed cost: nothing in training pulls in torch._dynamo (2 s of imports)."""
    code = ("import sys, numpy as np; from stcore.graph import spatial_adjacency; "
            "from stcore.train import TrainParams, fit_graph_model; "
            "xy = np.random.default_rng(0).uniform(0, 10, (60, 2)); "
            "fit_graph_model(np.random.default_rng(1).random((60, 20)), spatial_adjacency(xy), "
            "TrainParams(epochs=3, log_every=0, threads=1)); "
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'")
    run_in_fresh_python(code)


@pytest.mark.parametrize("shuffle_rows", [False, True])
def test_hvg_column_means_give_scipys_mean_bit_for_bit(shuffle_rows):
    """stcore.hvg's column means (added up a block of entries at a time) against scipy's
    ``mean(axis=0)`` (a scaled copy of the matrix), also with each row's entries out of order."""
    from stcore.hvg import _column_means

    x = sp.random(400, 60, density=0.2, format="csr", dtype=np.float64, random_state=1)
    x.data = np.log1p(np.round(x.data * 50) + 1) * 1.37
    if shuffle_rows:
        rng = np.random.default_rng(0)
        for i in range(x.shape[0]):
            lo, hi = x.indptr[i], x.indptr[i + 1]
            order = lo + rng.permutation(hi - lo)
            x.indices[lo:hi], x.data[lo:hi] = x.indices[order], x.data[order]
        x.has_sorted_indices = False
    data = x.data.copy()
    means = np.asarray(x.mean(axis=0)).ravel().tobytes()
    squares = np.asarray(x.multiply(x).mean(axis=0)).ravel().tobytes()
    for block in (7, 1000, 1 << 22):                 # several blocks, and one
        assert _column_means(x, block=block).tobytes() == means
        assert _column_means(x, squared=True, block=block).tobytes() == squares
    assert np.array_equal(x.data, data)


def _transform_plain(x, params):
    """The hvg transform with scipy's products by diagonal matrices and its means (copies)."""
    x = sp.csr_matrix(x, dtype=np.float64)
    if params.values == "counts":
        totals = np.asarray(x.sum(axis=1)).ravel()
        scale = np.divide(params.target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
        x = sp.csr_matrix(sp.diags(scale) @ x)
    if params.values != "log_normalized":
        x.data = np.log1p(x.data)
    if not params.scale:
        return x.astype(np.float32)
    n = x.shape[0]
    mean = np.asarray(x.mean(axis=0)).ravel()
    sq = np.asarray(x.multiply(x).mean(axis=0)).ravel()
    sd = np.sqrt(np.clip((sq - mean ** 2) * (n / (n - 1)), 0, None))
    sd[sd == 0] = 1.0
    x = sp.csr_matrix(x @ sp.diags(1.0 / sd))
    np.minimum(x.data, params.max_value, out=x.data)
    return x.astype(np.float32)


@pytest.mark.parametrize("values,scale", [("counts", True), ("normalized", True), ("log_normalized", True),
                                          ("counts", False)])
def test_in_place_hvg_transform_equals_the_plain_one_bit_for_bit(values, scale):
    """Entries scaled in place (stcore.hvg.transform) against scipy's diagonal products: the same
    stored entries, in the same order, with the same bits; also with an empty spot, explicit
    zeros, a constant gene and values above the clip (clipped only when genes are scaled).  The
    input is left as it was."""
    from stcore.hvg import HVGParams, transform

    x = sp.random(300, 40, density=0.25, format="lil", dtype=np.float64, random_state=3)
    x[5, :] = 0                                     # a spot with no counts
    x[:, 7] = 2.0                                   # a gene with sd 0
    x[11, 3] = 5e4                                  # clipped after scaling
    x = sp.csr_matrix(x)
    x.data = np.where(x.data < 1, np.round(x.data * 30), x.data)     # some explicit zeros
    before = (x.data.copy(), x.indices.copy(), x.indptr.copy())
    params = HVGParams(values=values, scale=scale)
    got, want = transform(x, params), _transform_plain(x, params)
    assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)
    assert got.data.tobytes() == want.data.tobytes()
    assert (got.data == 10.0).any() == scale and got.nnz < x.nnz
    if not scale:                                   # log1p of the normalised counts, nothing more
        assert np.allclose(got.toarray(), np.log1p(x.toarray() * 1e4 / np.maximum(x.sum(axis=1).A, 1e-300)),
                           rtol=1e-6)
    assert all(np.array_equal(u, v) for u, v in zip(before, (x.data, x.indices, x.indptr)))


def _scanpy_seurat_v3(x, n_top_genes):
    """scanpy's own seurat_v3 selection on two numba threads: (variances_norm, mask)."""
    import anndata as ad
    import numba
    import scanpy as sc

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has fewer than 2 threads here (NUMBA_NUM_THREADS): scanpy's sums cannot be "
                    "split as on two threads")
    threads = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        t = ad.AnnData(x.copy())
        sc.pp.highly_variable_genes(t, flavor="seurat_v3", n_top_genes=n_top_genes)
    finally:
        numba.set_num_threads(threads)
    return t.var["variances_norm"].to_numpy(), t.var["highly_variable"].to_numpy()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_seurat_v3_equals_scanpys_bit_for_bit(dtype):
    """stcore.hvg.seurat_v3 (no scanpy import) against scanpy's highly_variable_genes(flavor=
    'seurat_v3') on two numba threads: the same normalised variances, bit for bit, and the same
    genes; counts as integers (some above 46,340, whose squares overflow 32 bits) and as floats
    (also non-integer values), one block or several, rows with their entries out of order."""
    from stcore.hvg import seurat_v3, seurat_v3_variance

    rng = np.random.default_rng(5)
    n, g = 700, 300
    x = sp.random(n, g, density=0.3, format="csr", dtype=np.float64, random_state=2)
    scale = rng.lognormal(0, 1.2, g)                     # genes of very different depth
    x.data = np.round(x.data * 40 * scale[x.indices]) + 1
    x.data[:5] = [5e4, 6e4, 7e4, 1e5, 2e5]
    if np.dtype(dtype).kind == "f":
        x.data[5::7] += 0.37                             # not counts: scanpy only warns
    x = sp.csr_matrix(x.astype(dtype))
    lo, hi = x.indptr[3], x.indptr[4]                    # one row's entries out of order
    x.indices[lo:hi], x.data[lo:hi] = x.indices[lo:hi][::-1].copy(), x.data[lo:hi][::-1].copy()
    want_var, want_mask = _scanpy_seurat_v3(x, 100)
    for block in (1 << 22, 999):
        assert seurat_v3_variance(x, block=block).tobytes() == want_var.tobytes()
        assert np.array_equal(seurat_v3(x, 100, block=block), want_mask)
    assert want_mask.sum() == 100


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_seurat_v3_equals_scanpys_on_the_shared_slides():
    """The same check on every labelled slide in ../shared/data (raw counts, all genes)."""
    import anndata as ad

    from stcore.hvg import seurat_v3, seurat_v3_variance

    paths = sorted(need_data().glob("*/*.h5ad"))
    assert paths
    for path in paths:
        x = sp.csr_matrix(ad.read_h5ad(path).X)
        n_top = min(3000, x.shape[1] // 2)
        want_var, want_mask = _scanpy_seurat_v3(x, n_top)
        assert seurat_v3_variance(x).tobytes() == want_var.tobytes(), path.name
        assert np.array_equal(seurat_v3(x, n_top), want_mask), path.name


def test_the_hvg_step_does_not_import_scanpy():
    """The hvg step's fixed cost: seurat_v3 selection and the transform import neither scanpy
    (about 2 s) nor numba."""
    code = ("import sys, numpy as np, scipy.sparse as sp, anndata as ad; from stcore.hvg import HVGParams, run_hvg; "
            "x = sp.random(300, 200, density=0.3, format='csr', random_state=0); x.data = np.round(x.data * 20) + 1; "
            "out = run_hvg(ad.AnnData(x), HVGParams(n_top_genes=50)); assert out.n_vars == 50; "
            "assert not {'scanpy', 'numba'} & set(sys.modules), 'scanpy or numba was imported'")
    run_in_fresh_python(code)


def test_varying_genes_counts_as_scipys_max_and_min():
    """hvg's count of genes taking more than one value (a block of entries at a time) against
    scipy's max(axis=0) != min(axis=0): negative values, explicit zeros, genes with no stored
    value, constant genes stored in every spot or with one spot at 0, duplicate entries."""
    from stcore.hvg import _varying_genes

    rng = np.random.default_rng(4)
    x = sp.random(300, 80, density=0.2, format="lil", dtype=np.float64, random_state=6)
    x[:, 0] = 0                                    # nothing stored
    x[:, 1] = 3.0                                  # the same value in every spot
    x[:, 2] = 3.0
    x[7, 2] = 0                                    # ... but one spot at 0
    x[:, 3] = -2.0                                 # negative and constant
    x = sp.csr_matrix(x)
    x.data[::5] *= -1
    x.data[::11] = 0                               # explicit zeros
    dup = sp.csr_matrix((np.r_[x.data, [1.0, 1.0]], np.r_[x.indices, [1, 1]],
                         np.r_[x.indptr[:-1], x.indptr[-1] + 2]), shape=x.shape)   # two more entries in the last row
    dup.has_canonical_format = False
    for m in (x, dup, sp.csr_matrix(rng.integers(0, 3, (50, 20)).astype(np.int32)), x[:1]):
        want = int((m.max(axis=0).toarray() != m.min(axis=0).toarray()).sum()) if m.shape[0] > 1 else 0
        for block in (7, 1 << 22):
            assert _varying_genes(m, block=block) == want
    assert 0 < _varying_genes(x) < x.shape[1]
