"""The graph contrastive autoencoder, in pure torch.

Shapes: N spots, G genes, d latent width.  ``adj`` is the GCN-normalised adjacency Â and
``readout_op`` the row-normalised (A + I), both sparse N x N torch tensors.

    Z   = Â X W1                      latent (pre-activation), N x d
    H   = Â Z W2 = (Â Z) W2           reconstruction, N x G (never formed in training)
    E   = ReLU(Z),  E~ = ReLU(Â X[π] W1) with π a row permutation (corruption)
    s_i = sigmoid(normalize((R E)_i)) neighbourhood summary, R = readout_op
    D(s, e) = e^T B s + b             bilinear discriminator
    loss = w_rec * MSE(H, X) + w_con * (BCE(D(s, E) -> 1, D(s, E~) -> 0)
                                        + BCE(D(s~, E~) -> 1, D(s~, E) -> 0))

Exact rewrites used in training, each tested against the plain form:
- X[π] W1 = (X W1)[π]: the corrupted branch reuses X W1;
- Â (Z W2) = (Â Z) W2: the decoder's sparse product stays in latent width;
- ||U W2 - X||² = <UᵀU, W2 W2ᵀ> - 2 <U, X W2ᵀ> + ||X||²: the N x G reconstruction is
  never formed; X W1 and X W2ᵀ come from a single product X [W1, W2ᵀ].
- X may be a sparse operator (CSR with its transpose): X [W1, W2ᵀ] and its weight gradient
  Xᵀ G are then sparse products over X's non-zeros only.  The transformed expression is
  scaled without centring, so it keeps the zeros of the counts (a tenth of the entries are
  non-zero on a Visium slide).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GraphContrastiveAE", "ModelOutput", "LossParts", "to_torch_sparse", "readout",
           "reconstruction_sse", "reconstruction_sse_plain", "row_permutation", "fixed_order_sum"]


def to_torch_sparse(m: sp.spmatrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """scipy sparse -> torch sparse COO (float32, coalesced)."""
    m = sp.coo_matrix(m, dtype=np.float32)
    idx = torch.from_numpy(np.vstack([m.row, m.col]).astype(np.int64))
    t = torch.sparse_coo_tensor(idx, torch.from_numpy(m.data), m.shape, dtype=torch.float32,
                                check_invariants=True)
    return t.coalesce().to(device)


@dataclass(frozen=True)
class SparseOperator:
    """A sparse N x N operator held as CSR together with its transpose, so that the
    backward pass of ``A @ X`` (which is ``Aᵀ @ grad``) is one more CSR product instead of
    torch's generic COO backward, which transposes and coalesces ``A`` every call."""

    csr: torch.Tensor      # A, sparse CSR
    csr_t: torch.Tensor    # Aᵀ, sparse CSR

    @property
    def shape(self):
        return self.csr.shape


def to_sparse_operator(m: sp.spmatrix, device: torch.device | str = "cpu") -> SparseOperator:
    """scipy sparse -> :class:`SparseOperator` (float32 CSR of ``m`` and of ``m.T``); ``m``
    may be any sparse matrix, square (a graph operator) or not (the features).

    Indices are int32 where the non-zeros and both dimensions fit (every slide up to ~2 * 10^9
    non-zeros): a third less memory than int64 for the same products (bit for bit on the AMD
    EPYC where it was measured)."""
    def csr(a):
        a = sp.csr_matrix(a, dtype=np.float32)
        a.sort_indices()
        index = np.int32 if max(a.nnz, *a.shape) <= np.iinfo(np.int32).max else np.int64
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
            return torch.sparse_csr_tensor(torch.from_numpy(a.indptr.astype(index, copy=False)),
                                           torch.from_numpy(a.indices.astype(index, copy=False)),
                                           torch.from_numpy(a.data), a.shape, dtype=torch.float32,
                                           check_invariants=True).to(device)
    return SparseOperator(csr(m), csr(sp.csr_matrix(m).T))


class _OperatorMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, a_t, x):
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad):
        return None, None, torch.sparse.mm(ctx.a_t, grad)


def spmm(a: torch.Tensor | SparseOperator, x: torch.Tensor) -> torch.Tensor:
    """``a @ x`` for a sparse torch tensor or a :class:`SparseOperator` (differentiable in ``x``)."""
    if isinstance(a, SparseOperator):
        return _OperatorMatmul.apply(a.csr, a.csr_t, x)
    return torch.sparse.mm(a, x)


def readout(readout_op: torch.Tensor | SparseOperator, emb: torch.Tensor) -> torch.Tensor:
    """Neighbourhood summary: mean of each spot's and its neighbours' embeddings,
    L2-normalised per row, then sigmoid.  (N, d) -> (N, d)."""
    return _summary(spmm(readout_op, emb))


def _summary(agg: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(F.normalize(agg, p=2, dim=-1))


def row_permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of ``n`` rows drawn from ``generator`` (the corruption)."""
    return torch.randperm(n, generator=generator, device=generator.device)


def fixed_order_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of all entries of ``t`` (2-D) that does not depend on the number of CPU threads.

    A plain ``t.sum()`` over a large tensor is split into one partial sum per thread, so
    its last bits change with ``torch.set_num_threads``.  Summing each column first (one
    output per column, each added up in a fixed order by a single thread) and then the
    short row of column sums gives the same bits for any thread count.
    """
    return t.sum(dim=0).sum()


def reconstruction_sse_plain(u: torch.Tensor, w2: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """||U W2 - X||² by forming the N x G reconstruction."""
    return ((u @ w2 - x) ** 2).sum()


def reconstruction_sse(u: torch.Tensor, w2: torch.Tensor, x_w2t: torch.Tensor,
                       x_sqnorm: float | torch.Tensor) -> torch.Tensor:
    """||U W2 - X||² without the N x G reconstruction.

    u: (N, d); w2: (d, G); x_w2t: X W2ᵀ, (N, d); x_sqnorm: ||X||² (a constant).
    """
    gram_u = u.T @ u                       # (d, d)
    gram_w = w2 @ w2.T                     # (d, d)
    return fixed_order_sum(gram_u * gram_w) - 2 * fixed_order_sum(u * x_w2t) + x_sqnorm


@dataclass
class ModelOutput:
    latent: torch.Tensor        # Z, (N, d), before the activation
    decoded: torch.Tensor       # Â Z, (N, d); the reconstruction is decoded @ decoder_weight
    logits: torch.Tensor        # (N, 2): [D(s, E), D(s, E~)]
    logits_corrupt: torch.Tensor  # (N, 2): [D(s~, E~), D(s~, E)]
    x_w2t: torch.Tensor         # X W2ᵀ, (N, d), for the reconstruction loss


@dataclass
class LossParts:
    total: torch.Tensor
    reconstruction: torch.Tensor  # MSE(H, X)
    contrastive: torch.Tensor     # sum of the two BCE terms


class BilinearDiscriminator(nn.Module):
    """Scores (summary, embedding) pairs with ``e^T B s + b``; returns (N, 2) logits for
    the positive and the negative embedding of each spot."""

    def __init__(self, n_latent: int, generator: torch.Generator | None = None):
        super().__init__()
        self.bilinear = nn.Bilinear(n_latent, n_latent, 1)
        nn.init.xavier_uniform_(self.bilinear.weight, generator=generator)
        nn.init.zeros_(self.bilinear.bias)

    def forward(self, summary: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        # e^T B s as (E B) * s summed over the latent axis: the same numbers as
        # nn.Bilinear(pos, summary), whose generic kernel expands an (N, d, d) tensor.
        b = self.bilinear.weight[0]                       # (d, d)
        both = torch.stack([pos, neg]) @ b                # (2, N, d)
        return (both * summary).sum(dim=2).T + self.bilinear.bias


class GraphContrastiveAE(nn.Module):
    """Sparse GCN encoder, GCN decoder and a Deep-Graph-Infomax-style discriminator.

    n_genes: G.  n_latent: d (64).  tied_decoder: use W2 = W1ᵀ instead of a separate W2
    (default False).  generator: the source of the initial weights (Xavier uniform).
    """

    def __init__(self, n_genes: int, n_latent: int = 64, *, tied_decoder: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        if n_genes < 1 or n_latent < 1:
            raise ValueError(f"n_genes and n_latent must be positive, got {n_genes}, {n_latent}")
        self.tied_decoder = tied_decoder
        self.weight1 = nn.Parameter(torch.empty(n_genes, n_latent))
        nn.init.xavier_uniform_(self.weight1, generator=generator)
        if not tied_decoder:
            self.weight2 = nn.Parameter(torch.empty(n_latent, n_genes))
            nn.init.xavier_uniform_(self.weight2, generator=generator)
        self.discriminator = BilinearDiscriminator(n_latent, generator)

    @property
    def decoder_weight(self) -> torch.Tensor:
        """W2, (d, G)."""
        return self.weight1.T if self.tied_decoder else self.weight2

    def forward(self, x: torch.Tensor | SparseOperator, adj: torch.Tensor | SparseOperator,
                readout_op: torch.Tensor | SparseOperator, perm: torch.Tensor) -> ModelOutput:
        """x: (N, G) dense tensor or :class:`SparseOperator`; adj, readout_op: sparse (N, N)
        torch tensors or :class:`SparseOperator` (faster backward); perm: (N,) corruption."""
        def times(w):
            return spmm(x, w) if isinstance(x, SparseOperator) else x @ w

        if self.tied_decoder:
            xw = times(self.weight1)
            x_w2t = xw                      # X W2ᵀ = X W1 when W2 = W1ᵀ
        else:
            d = self.weight1.shape[1]
            both = times(torch.cat([self.weight1, self.weight2.T], dim=1))
            xw, x_w2t = both[:, :d], both[:, d:]
        d = xw.shape[1]
        # Â [XW1, (XW1)[π]] in one sparse product; (XW1)[π] = X[π]W1.
        zz = spmm(adj, torch.cat([xw, xw[perm]], dim=1))
        z, z_corrupt = zz[:, :d], zz[:, d:]
        decoded = spmm(adj, z)
        ee = F.relu(zz)
        emb, emb_corrupt = ee[:, :d], ee[:, d:]
        # Both summaries from one sparse product, each half normalised on its own.
        ss = _summary(spmm(readout_op, ee).view(-1, 2, d))
        s, s_corrupt = ss[:, 0], ss[:, 1]
        logits = self.discriminator(s, emb, emb_corrupt)
        logits_corrupt = self.discriminator(s_corrupt, emb_corrupt, emb)
        return ModelOutput(z, decoded, logits, logits_corrupt, x_w2t)

    def loss(self, out: ModelOutput, x_sqnorm: float | torch.Tensor, n_genes: int, *,
             recon_weight: float = 10.0, contrast_weight: float = 1.0) -> LossParts:
        """Weighted sum of the reconstruction MSE and the two discriminator BCE terms."""
        n = out.latent.shape[0]
        recon = reconstruction_sse(out.decoded, self.decoder_weight, out.x_w2t, x_sqnorm) / (n * n_genes)
        target = torch.zeros_like(out.logits)
        target[:, 0] = 1.0
        # Mean BCE with a thread-independent reduction (see fixed_order_sum).
        contrast = (fixed_order_sum(F.binary_cross_entropy_with_logits(out.logits, target, reduction="none"))
                    + fixed_order_sum(F.binary_cross_entropy_with_logits(out.logits_corrupt, target,
                                                                         reduction="none"))) / target.numel()
        return LossParts(recon_weight * recon + contrast_weight * contrast, recon, contrast)
