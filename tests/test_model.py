import numpy as np
import torch
import torch.nn.functional as F

from stcore.graph import gcn_norm, spatial_adjacency, mean_operator
from stcore.model import (GraphContrastiveAE, readout, reconstruction_sse, reconstruction_sse_plain,
                          row_permutation, to_torch_sparse)


def _setup(hex_coords, g=20, d=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    adj = spatial_adjacency(hex_coords)
    x = torch.rand(len(hex_coords), g, generator=gen)
    return x, adj, to_torch_sparse(gcn_norm(adj)), to_torch_sparse(mean_operator(adj)), gen


def test_sparse_readout_equals_dense_reference(hex_coords):
    x, adj, _, r_op, gen = _setup(hex_coords)
    emb = torch.rand(len(hex_coords), 8, generator=gen)
    dense = adj.toarray() + np.eye(adj.shape[0])
    mean = torch.from_numpy(dense / dense.sum(1, keepdims=True)).float() @ emb
    expected = torch.sigmoid(mean / mean.norm(dim=1, keepdim=True))
    assert torch.allclose(readout(r_op, emb), expected, atol=1e-6)


def test_decoder_order_does_not_change_the_value(hex_coords):
    x, adj, a_hat, _, gen = _setup(hex_coords)
    z = torch.randn(len(hex_coords), 8, generator=gen)
    w2 = torch.randn(8, 20, generator=gen)
    assert torch.allclose(torch.sparse.mm(a_hat, z) @ w2, torch.sparse.mm(a_hat, z @ w2), atol=1e-5)


def test_expanded_reconstruction_error_equals_plain_and_has_same_gradients(hex_coords):
    x, *_ , gen = _setup(hex_coords)
    u = torch.randn(len(hex_coords), 8, generator=gen, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(8, 20, generator=gen, dtype=torch.float64, requires_grad=True)
    xd = x.double()
    plain = reconstruction_sse_plain(u, w2, xd)
    g_plain = torch.autograd.grad(plain, [u, w2])
    fast = reconstruction_sse(u, w2, xd @ w2.T, float((xd ** 2).sum()))
    g_fast = torch.autograd.grad(fast, [u, w2])
    assert torch.allclose(plain, fast, rtol=1e-10)
    for a, b in zip(g_plain, g_fast):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9)


def test_model_loss_equals_the_plain_definition(hex_coords):
    x, adj, a_hat, r_op, gen = _setup(hex_coords)
    model = GraphContrastiveAE(20, 8, generator=gen)
    perm = row_permutation(len(hex_coords), gen)
    out = model(x, a_hat, r_op, perm)
    parts = model.loss(out, float((x ** 2).sum()), 20)
    # plain form: corrupted features formed explicitly, reconstruction formed explicitly
    z = torch.sparse.mm(a_hat, x @ model.weight1)
    z_c = torch.sparse.mm(a_hat, x[perm] @ model.weight1)
    h = torch.sparse.mm(a_hat, z @ model.weight2)
    assert torch.allclose(out.latent, z, atol=1e-5)
    assert torch.allclose(parts.reconstruction, F.mse_loss(h, x), rtol=1e-4)
    emb, emb_c = F.relu(z), F.relu(z_c)
    s, s_c = readout(r_op, emb), readout(r_op, emb_c)
    bil = model.discriminator.bilinear
    ones, zeros = torch.ones(len(x), 1), torch.zeros(len(x), 1)
    bce = F.binary_cross_entropy_with_logits
    expected = (bce(torch.cat([bil(emb, s), bil(emb_c, s)], 1), torch.cat([ones, zeros], 1))
                + bce(torch.cat([bil(emb_c, s_c), bil(emb, s_c)], 1), torch.cat([ones, zeros], 1)))
    assert torch.allclose(parts.contrastive, expected, rtol=1e-5)
    assert torch.isfinite(parts.total)
    assert out.logits.shape == (len(x), 2)


def test_tied_decoder_uses_the_encoder_weight(hex_coords):
    x, adj, a_hat, r_op, gen = _setup(hex_coords)
    model = GraphContrastiveAE(20, 8, tied_decoder=True, generator=gen)
    assert not hasattr(model, "weight2")
    assert torch.equal(model.decoder_weight, model.weight1.T)
    out = model(x, a_hat, r_op, row_permutation(len(x), gen))
    parts = model.loss(out, float((x ** 2).sum()), 20)
    h = torch.sparse.mm(a_hat, out.latent) @ model.weight1.T
    assert torch.allclose(parts.reconstruction, F.mse_loss(h, x), rtol=1e-4)


def test_same_generator_seed_same_weights():
    a = GraphContrastiveAE(30, 4, generator=torch.Generator().manual_seed(5))
    b = GraphContrastiveAE(30, 4, generator=torch.Generator().manual_seed(5))
    c = GraphContrastiveAE(30, 4, generator=torch.Generator().manual_seed(6))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.weight1, c.weight1)
