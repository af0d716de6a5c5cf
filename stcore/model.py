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

On the CPU, training takes its loss and gradients from :meth:`GraphContrastiveAE.training_loss`: the
same operations as ``loss(forward(...))`` and autograd's backward, in the same order (the weights'
gradients are bit for bit autograd's: ``tests/test_exact_rewrites.py``), written out by hand into
buffers that live across epochs (:class:`Workspace`).  What goes is only what the arithmetic does
not need: a fresh allocation (a fresh ``mmap``, faulted in page by page, above 32 MB) for every
N x d tensor of every epoch, and autograd's zero-filled copies for slices, selections, stacking
and the corruption's row gather.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GraphContrastiveAE", "ModelOutput", "LossParts", "Workspace", "to_torch_sparse", "to_torch_csr",
           "readout", "reconstruction_sse", "reconstruction_sse_plain", "row_permutation", "fixed_order_sum"]

# F.normalize's default floor on the norm.
NORM_EPS = 1e-12


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
    return SparseOperator(to_torch_csr(m, device), to_torch_csr(sp.csr_matrix(m).T, device))


def to_torch_csr(m: sp.spmatrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """scipy sparse -> torch sparse CSR (float32, sorted indices; int32 indices where they fit,
    see :func:`to_sparse_operator`) on ``device``."""
    a = sp.csr_matrix(m, dtype=np.float32)
    a.sort_indices()
    index = np.int32 if max(a.nnz, *a.shape) <= np.iinfo(np.int32).max else np.int64
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(torch.from_numpy(a.indptr.astype(index, copy=False)),
                                       torch.from_numpy(a.indices.astype(index, copy=False)),
                                       torch.from_numpy(a.data), a.shape, dtype=torch.float32,
                                       check_invariants=True).to(device)


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
    return torch.sigmoid(F.normalize(agg, p=2, dim=-1, eps=NORM_EPS))


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
        contrast = _contrastive(out.logits, out.logits_corrupt)
        return LossParts(recon_weight * recon + contrast_weight * contrast, recon, contrast)

    def training_loss(self, x: torch.Tensor | SparseOperator, adj: SparseOperator, readout_op: SparseOperator,
                      perm: torch.Tensor, x_sqnorm: float | torch.Tensor, n_genes: int,
                      workspace: Workspace | None = None, *, recon_weight: float = 10.0,
                      contrast_weight: float = 1.0) -> LossParts:
        """``loss(forward(...))``, the same numbers and, after ``backward()``, the same gradients bit
        for bit, with the N x d work written out into ``workspace``'s buffers (see the module
        docstring).  The buffers hold this call's values until its backward has run: one backward
        per call, and the next call overwrites them.  Without a workspace, with a tied decoder or
        with a graph given as a plain sparse tensor this is ``loss(forward(...))`` itself."""
        if workspace is None or self.tied_decoder or not isinstance(adj, SparseOperator) \
                or not isinstance(readout_op, SparseOperator):
            return self.loss(self(x, adj, readout_op, perm), x_sqnorm, n_genes, recon_weight=recon_weight,
                             contrast_weight=contrast_weight)
        w = torch.cat([self.weight1, self.weight2.T], dim=1)
        gram_u, cross, raw, raw_corrupt = _TrainingPass.apply(w, self.discriminator.bilinear.weight[0], x, adj,
                                                              readout_op, perm, workspace)
        bias = self.discriminator.bilinear.bias
        # reconstruction_sse's expansion, its N x d terms (UᵀU, the column sums of U ∘ X W2ᵀ) from the pass
        sse = fixed_order_sum(gram_u * (self.weight2 @ self.weight2.T)) - 2 * cross.sum() + x_sqnorm
        recon = sse / (perm.shape[0] * n_genes)
        contrast = _contrastive(raw.T + bias, raw_corrupt.T + bias)
        return LossParts(recon_weight * recon + contrast_weight * contrast, recon, contrast)


def _contrastive(logits: torch.Tensor, logits_corrupt: torch.Tensor) -> torch.Tensor:
    """The two discriminator BCE terms, each a mean, with a thread-independent reduction (see
    fixed_order_sum); column 0 of each (N, 2) pair of logits is the positive pair."""
    target = torch.zeros_like(logits)
    target[:, 0] = 1.0
    return (fixed_order_sum(F.binary_cross_entropy_with_logits(logits, target, reduction="none"))
            + fixed_order_sum(F.binary_cross_entropy_with_logits(logits_corrupt, target, reduction="none"))) \
        / target.numel()


class Workspace:
    """Named buffers reused from one training epoch to the next (:meth:`GraphContrastiveAE.training_loss`).

    Ten N x 2d-sized buffers at most (about what autograd keeps alive at its own peak), allocated at
    the first epoch; every later epoch writes into memory that is already mapped."""

    def __init__(self):
        self.buffers: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, *shape: int, like: torch.Tensor) -> torch.Tensor:
        t = self.buffers.get(name)
        if t is None or t.shape != shape or t.dtype != like.dtype or t.device != like.device:
            t = self.buffers[name] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return t


def _into(out: torch.Tensor, op: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``op @ dense`` (a sparse CSR ``op``) written into ``out``: torch.sparse.mm's own kernel."""
    return torch.addmm(out, op, dense, beta=0, out=out)


class _TrainingPass(torch.autograd.Function):
    """The model's forward from the weights to the N x d-sized terms of its loss, and the backward
    of exactly those operations, each in the form autograd's derivative formula takes (operands,
    their order and layout), so that every gradient is autograd's bit for bit.

    Inputs: W = [W1, W2ᵀ] (G x 2d), the discriminator's B (d x d), the features, Â, R, π, the
    workspace.  Outputs: UᵀU (d x d) and the column sums of U ∘ XW2ᵀ (d) for the reconstruction
    (U = Â Z), and the discriminators' scores before their bias, (2, N) each: rows (D(s, E), D(s, E~))
    and (D(s~, E~), D(s~, E)).

    Buffers (``ws``), by what they hold: ``both`` XW (to the end: XW2ᵀ is in the backward); ``ee``
    Â[XW1, XW1[π]] then its ReLU [E, E~]; ``decoded`` U; ``agg`` R[E, E~]; ``ss`` the summaries;
    ``p``/``p_c`` the stacked [E, E~] B and [E~, E] B; scratch: ``half`` (N x d), ``wide`` and
    ``stack`` (N x 2d), ``prod`` (2N x d); the backward reuses them as their values die."""

    @staticmethod
    def forward(ctx, w, b, x, adj, readout_op, perm, ws):
        n, d = perm.shape[0], b.shape[0]
        both = ws("both", n, 2 * d, like=w)
        if isinstance(x, SparseOperator):
            _into(both, x.csr, w)
        else:
            torch.mm(x, w, out=both)
        xw, x_w2t = both[:, :d], both[:, d:]
        half, wide = ws("half", n, d, like=w), ws("wide", n, 2 * d, like=w)
        torch.cat([xw, torch.index_select(xw, 0, perm, out=half)], 1, out=wide)     # [XW1, (XW1)[π]]
        ee = _into(ws("ee", n, 2 * d, like=w), adj.csr, wide)                         # [Z, Z~]
        decoded = _into(ws("decoded", n, d, like=w), adj.csr, half.copy_(ee[:, :d]))
        ee.clamp_min_(0)                                                               # ReLU (torch's relu is clamp_min)
        agg = _into(ws("agg", n, 2 * d, like=w), readout_op.csr, ee)
        v = agg.view(n, 2, d)
        norm = torch.linalg.vector_norm(v, 2, dim=-1, keepdim=True)                   # F.normalize
        den = norm.clamp_min(NORM_EPS)
        ss = torch.div(v, den.expand_as(v), out=ws("ss", n, 2, d, like=w)).sigmoid_()
        emb, emb_c = ee[:, :d], ee[:, d:]
        stack, prod = ws("stack", 2, n, d, like=w), ws("prod", 2, n, d, like=w)
        p = torch.mm(torch.stack([emb, emb_c], out=stack).view(2 * n, d), b, out=ws("p", 2 * n, d, like=w))
        raw = torch.mul(p.view(2, n, d), ss[:, 0], out=prod).sum(dim=2)
        p_c = torch.mm(torch.stack([emb_c, emb], out=stack).view(2 * n, d), b, out=ws("p_c", 2 * n, d, like=w))
        raw_c = torch.mul(p_c.view(2, n, d), ss[:, 1], out=prod).sum(dim=2)
        gram_u = decoded.T @ decoded
        cross = torch.mul(decoded, x_w2t, out=half).sum(dim=0)
        ctx.save_for_backward(b, perm, norm, den)
        ctx.x, ctx.adj, ctx.readout_op, ctx.ws = x, adj, readout_op, ws
        return gram_u, cross, raw, raw_c

    @staticmethod
    def backward(ctx, g_gram, g_cross, g_raw, g_raw_c):
        b, perm, norm, den = ctx.saved_tensors
        ws = ctx.ws
        n, d = perm.shape[0], b.shape[0]
        buf = ws.buffers
        both, ee, decoded, agg, ss = buf["both"], buf["ee"], buf["decoded"], buf["agg"], buf["ss"]
        half, wide, stack, prod, p, p_c = buf["half"], buf["wide"], buf["stack"], buf["prod"], buf["p"], buf["p_c"]
        emb, emb_c = ee[:, :d], ee[:, d:]
        g_ss = wide.view(n, 2, d)
        # The discriminators: D = sum(P * s) over the latent axis, P = stack @ B.  Their gradients
        # w.r.t. the stacks overwrite P and P~ once P and P~ are used.
        g_b = []
        for g, pp, s, pos, neg, col in ((g_raw, p, ss[:, 0], emb, emb_c, 0), (g_raw_c, p_c, ss[:, 1], emb_c, emb, 1)):
            ge = g.unsqueeze(2).expand(2, n, d)
            torch.mul(ge, pp.view(2, n, d), out=prod)
            torch.add(prod[0], prod[1], out=g_ss[:, col])          # MulBackward's sum over the broadcast axis
            torch.mul(ge, s, out=prod)
            g_b.append(torch.stack([pos, neg], out=stack).view(2 * n, d).t().mm(prod.view(2 * n, d)))
            torch.mm(prod.view(2 * n, d), b.t(), out=pp)
        g_b = g_b[0] + g_b[1]
        g_stack, g_stack_c = p, p_c
        g_e = stack.view(n, 2 * d)                                  # [dE, dE~] from both discriminators
        torch.add(g_stack[:n], g_stack_c[n:], out=g_e[:, :d])
        torch.add(g_stack[n:], g_stack_c[:n], out=g_e[:, d:])
        # sigmoid, then F.normalize = v / max(||v||, eps): DivBackward, ClampMinBackward, the norm's backward.
        torch.ops.aten.sigmoid_backward.grad_input(g_ss, ss, grad_input=g_ss)
        v = agg.view(n, 2, d)
        den_e = den.expand_as(v)
        t = prod.view(n, 2, d)
        g_v = p.view(n, 2, d)
        torch.mul(torch.neg(g_ss, out=g_v), torch.div(v, den_e, out=t).div_(den_e), out=t)
        g_norm = torch.where(norm >= NORM_EPS, t.sum(dim=2, keepdim=True), torch.zeros((), dtype=t.dtype,
                                                                                        device=t.device))
        torch.div(g_ss, den_e, out=g_v)
        g_v.add_(torch.mul(g_norm, torch.div(v, norm, out=t).masked_fill_(norm == 0, 0), out=t))
        # readout, with the discriminators' share, then ReLU
        g_ee = _into(p_c.view(n, 2 * d), ctx.readout_op.csr_t, g_v.view(n, 2 * d))
        g_ee.add_(g_e)
        torch.ops.aten.threshold_backward.grad_input(g_ee, ee, 0, grad_input=g_ee)
        # U = Â Z: gradient of UᵀU (both factors) and of U ∘ XW2ᵀ, added in autograd's order
        g_cross = g_cross.expand(n, d)
        g_u = prod.view(2, n, d)[0]
        torch.mm(decoded, g_gram.t(), out=g_u).add_(torch.mul(g_cross, both[:, d:], out=half))
        g_u.add_(torch.mm(decoded, g_gram, out=half))
        g_ee[:, :d].add_(_into(half, ctx.adj.csr_t, g_u))
        g_wide = _into(wide, ctx.adj.csr_t, g_ee)
        # [XW1, (XW1)[π]]: the gathered half goes back through π's inverse; then XW2ᵀ's share
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(n, device=perm.device)
        g_both = stack.view(n, 2 * d)
        torch.add(g_wide[:, :d], torch.index_select(g_wide[:, d:], 0, inverse, out=half), out=g_both[:, :d])
        torch.mul(g_cross, decoded, out=g_both[:, d:])
        x = ctx.x
        g_w = torch.sparse.mm(x.csr_t, g_both) if isinstance(x, SparseOperator) else x.t().mm(g_both)
        ctx.x = ctx.adj = ctx.readout_op = ctx.ws = None     # the graph kept by the caller holds no buffer
        return g_w, g_b, None, None, None, None, None
