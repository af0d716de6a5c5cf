"""Training the graph contrastive autoencoder, and the expression-only baseline.

The loop owns the optimiser and all randomness: one ``torch.Generator`` seeded from
``seed`` draws the initial weights and every epoch's corruption; no global random state
is touched.  Returns a :class:`stcore.methods.MethodResult` of numpy arrays (the one result
type of every method); the caller writes files.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from .errors import DivergenceError, InputError
from .graph import gcn_norm, mean_operator
from .methods import LOSS_COLUMNS, MethodResult
from .model import GraphContrastiveAE, Workspace, row_permutation, to_sparse_operator, to_torch_csr

__all__ = ["TrainParams", "fit_graph_model", "fit_expression", "resolve_device", "features_layout", "DivergenceError",
           "input_pca", "epoch_progress"]

log = logging.getLogger(__name__)


# A loss this many times larger than at the first epoch means the optimiser has run away.
DIVERGENCE_FACTOR = 1e6

# Called after every epoch of fit_graph_model as hook(epoch, epochs, loss) while epoch_progress is active.
_EPOCH_HOOK: ContextVar[Callable[[int, int, float], None] | None] = ContextVar("stcore_epoch_hook", default=None)


@contextmanager
def epoch_progress(desc: str = "training", *, enabled: bool = True) -> Iterator[None]:
    """Within it, :func:`fit_graph_model` draws a progress bar over its epochs (``tqdm.auto``: a
    widget in a notebook, a line on a terminal's stderr) with the loss beside it; each training
    gets its own bar.  ``enabled=False`` draws nothing.  The epoch log lines
    (``TrainParams.log_every``) are unchanged either way."""
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm

    bars = []

    def hook(epoch: int, epochs: int, loss: float) -> None:
        if epoch == 1:
            bars.append(tqdm(total=epochs, desc=desc, unit="epoch", leave=True))
        bar = bars[-1]
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        bar.update(1)
        if epoch == epochs:
            bar.close()

    token = _EPOCH_HOOK.set(hook)
    try:
        yield
    finally:
        _EPOCH_HOOK.reset(token)
        for bar in bars:
            bar.close()


@dataclass(frozen=True)
class TrainParams:
    """Reference defaults: 600 epochs, Adam lr 1e-3, no weight decay, latent 64,
    loss = 10 * MSE + 1 * (BCE + BCE), separate decoder weight.  The defaults are the config
    schema's (``stcore/schemas/config.schema.yaml``, ``train:``; a test checks they agree).

    seed: seeds the weights and the corruption.  device: 'cpu', 'cuda' or 'auto'.
    threads: torch CPU threads (None leaves torch's default).  log_every: epochs between
    progress lines.  input_pcs: when set, the model is trained on the first ``input_pcs``
    principal-component scores of the expression instead of the genes (a variant, not the
    reference method): the dense matrix is then N x input_pcs instead of N x G, which bounds
    memory on slides whose N x G matrix does not fit; the decoder then reconstructs the
    scores.  None (default) trains on the genes.
    """

    epochs: int = 600
    lr: float = 1e-3
    weight_decay: float = 0.0
    n_latent: int = 64
    recon_weight: float = 10.0
    contrast_weight: float = 1.0
    tied_decoder: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    log_every: int = 50
    input_pcs: int | None = None


def resolve_device(device: str) -> torch.device:
    """``'auto'`` (the first GPU when torch sees one, else the CPU) or any torch device string
    (``'cpu'``, ``'cuda'``, ``'cuda:1'``, ``'mps'``, ...), checked to exist on this machine: an
    unknown string, a GPU torch does not see, or a GPU index past the last one is an
    :class:`~stcore.InputError` naming the devices there are."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise InputError(f"train.device '{device}' is not a torch device ({e})",
                         fix="set train.device to auto, cpu, cuda or cuda:<index>") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"train.device is {device} but torch sees no GPU on this machine",
                             fix="set train.device to auto or cpu (in a notebook: stcore.tl.domains(..., "
                                 "train={'device': 'cpu'})), or run on a GPU node (the SLURM profile asks for "
                                 "one when train.device is cuda) with a CUDA build of torch (envs/stcore-cuda.yaml)")
        if dev.index is not None and dev.index >= count:
            raise InputError(f"train.device is {device} but torch sees {count} GPU(s) on this machine "
                             f"(cuda:0 to cuda:{count - 1})",
                             fix=f"set train.device to cuda:<index> with an index below {count}, or cuda")
        return dev
    backend = getattr(torch, dev.type, None) or getattr(torch.backends, dev.type, None)
    available = getattr(backend, "is_available", None)
    if available is None or not available():
        raise InputError(f"train.device is {device} but torch has no {dev.type} device on this machine",
                         fix="set train.device to auto, cpu or cuda")
    return dev


# Features with at most this fraction of non-zero entries are trained on as a sparse
# operator (CSR and its transpose), denser ones as one dense float32 matrix.  Measured on
# DLPFC 151673 (8.6 % non-zero, 2 threads), the sparse first-layer product and its gradient
# take half the time of the dense ones, and CSR with its transpose costs less memory than
# the dense matrix below about 15 % non-zero.
SPARSE_FEATURES_MAX_DENSITY = 0.15
# On a GPU the features are dense whenever they take at most this share of the GPU's free
# memory: cuSPARSE's product of a many-column CSR matrix sums in no fixed order (two runs of
# X W on DLPFC 151673 differed on an H200, the graph's few-per-row products did not), cuBLAS's
# dense product does, so a rerun on the same GPU gives the same bits (benchmarks/gpu/determinism.py).
GPU_DENSE_FEATURES_MAX_SHARE = 0.25


def features_layout(x, device: torch.device) -> str:
    """How :func:`fit_graph_model` holds the features on ``device``: ``'sparse'`` (a
    :class:`SparseOperator`) or ``'dense'``.  On the CPU sparse ``x`` with few non-zeros
    (:data:`SPARSE_FEATURES_MAX_DENSITY`) stays sparse.  On a GPU the features are dense, so
    that training repeats to the bit, unless the dense matrix would take more than
    :data:`GPU_DENSE_FEATURES_MAX_SHARE` of the GPU's free memory: then sparse, with a warning
    that the run will not repeat to the bit (``train.input_pcs`` gives a small dense input)."""
    if not sp.issparse(x):
        return "dense"
    n, g = x.shape
    if device.type == "cpu":
        return "sparse" if x.nnz <= SPARSE_FEATURES_MAX_DENSITY * n * g else "dense"
    dense_bytes = 4 * n * g
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    if free is None or dense_bytes <= GPU_DENSE_FEATURES_MAX_SHARE * free:
        return "dense"
    log.warning("the features as a dense matrix (%.1f GB) would take more than %d%% of the GPU's free memory "
                "(%.1f GB): training on them as a sparse matrix, whose GPU products sum in no fixed order, so "
                "a rerun will not give the same bits; train.input_pcs (e.g. 100) gives a small dense input "
                "that does", dense_bytes / 1e9, round(100 * GPU_DENSE_FEATURES_MAX_SHARE), free / 1e9)
    return "sparse"


def _features(x, device: torch.device):
    """The features as the model reads them, converted once (:func:`features_layout`): a
    :class:`SparseOperator` or one dense float32 tensor.  Also returns ||X||²."""
    if sp.issparse(x):
        x = sp.csr_matrix(x)
        if not x.has_canonical_format:      # repeated entries would miscount ||X||²
            x = x.copy()
            x.sum_duplicates()
        if features_layout(x, device) == "sparse":
            # ||X||² in float64 over the stored values, summed in a fixed order.
            return to_sparse_operator(x, device), float(np.sum(np.square(x.data, dtype=np.float64)))
        if device.type != "cpu":
            # Made dense on the GPU, so the host holds only the sparse matrix (at 1,000,000 spots x
            # 3,000 genes a host-side dense copy took the train step to 13.8 GB).
            xt = to_torch_csr(x).to(device).to_dense()
            return xt, _squared_norm(xt)
        x = x.toarray()
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    return xt, _squared_norm(xt)


def _squared_norm(xt: torch.Tensor, rows: int = 16384) -> float:
    """||X||² in float64, a block of rows at a time (no float64 copy of the whole X).

    Each block is summed per column and the column sums are added in a fixed order, so the
    result does not depend on the number of CPU threads."""
    col = torch.zeros(xt.shape[1], dtype=torch.float64, device=xt.device)
    for blk in xt.split(rows):
        col += (blk.double() ** 2).sum(dim=0)
    return float(col.sum())


class Adam:
    """Adam (Kingma & Ba), the update ``torch.optim.Adam`` makes, written out: for each
    parameter the same tensor operations in the same order as torch's single-tensor form
    (the one it takes for CPU tensors), so the weights come out bit for bit the same
    (``tests/test_exact_rewrites.py``).  torch's ``Optimizer`` imports ``torch._dynamo`` at
    its first call, about a second of every train job on a 2-core machine; this does not.
    L2 weight decay added to the gradient, as torch's ``weight_decay``; no amsgrad."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps, self.weight_decay = float(lr), betas, eps, weight_decay
        self.steps = [0] * len(self.params)
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:          # torch skips a parameter without a gradient, its step count too
                continue
            grad = p.grad if self.weight_decay == 0 else p.grad.add(p, alpha=self.weight_decay)
            self.steps[i] += 1
            step = float(self.steps[i])
            self.exp_avg[i].lerp_(grad, 1 - self.beta1)
            self.exp_avg_sq[i].mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            step_size = self.lr / (1 - self.beta1 ** step)
            denom = (self.exp_avg_sq[i].sqrt() / (1 - self.beta2 ** step) ** 0.5).add_(self.eps)
            p.addcdiv_(self.exp_avg[i], denom, value=-step_size)


def input_pca(x, n_comps: int) -> np.ndarray:
    """Scores (N, n_comps) of the first principal components of ``x`` (N x G, sparse or
    dense), float32, without forming a dense N x G matrix: the G x G covariance is
    eigendecomposed and the scores are ``X V - mean V``.  Signs: largest loading positive."""
    n, g = x.shape
    k = min(n_comps, g, n)
    if sp.issparse(x):
        # XᵀX a block of rows at a time with dense BLAS: a sparse-times-sparse product whose
        # result is dense (G x G) is far slower, and a dense copy of all of X is what this
        # option avoids.
        x = sp.csr_matrix(x)                                  # no float64 copy of X
        mean = np.asarray(x.sum(axis=0, dtype=np.float64)).ravel() / n
        gram = np.zeros((g, g))
        for start in range(0, n, 2048):
            blk = x[start:start + 2048].toarray().astype(np.float32)   # float32 BLAS per block,
            gram += blk.T @ blk                                           # float64 accumulation
    else:
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        gram = x.T @ x
    cov = gram / n - np.outer(mean, mean)
    from scipy.linalg import eigh

    vals, vecs = eigh(cov, subset_by_index=[g - k, g - 1])      # the k largest only
    v = np.ascontiguousarray(vecs[:, ::-1])
    v *= np.sign(v[np.abs(v).argmax(axis=0), np.arange(k)])
    scores = np.asarray(x @ v) - mean @ v
    log.info("input PCA: %d components keep %.1f%% of the variance", k,
             100 * vals.sum() / max(np.trace(cov), 1e-300))
    return scores.astype(np.float32)


def fit_graph_model(x, adj: sp.spmatrix, params: TrainParams = TrainParams()) -> MethodResult:
    """Train on expression ``x`` (N x G, sparse or dense) over the spatial adjacency ``adj``
    (symmetric 0/1, N x N sparse).  The result's embedding is Z, its decoded Â Z and its decoder
    weight W2 (the reconstruction is Â Z W2), with the losses and each epoch's wall time."""
    if params.threads:
        torch.set_num_threads(params.threads)
    device = resolve_device(params.device)
    if device.type == "cpu":
        from .provenance import mkl_cnr_mode

        mode = mkl_cnr_mode()
        if mode not in ("none", "unknown") and "STRICT" not in mode:
            log.warning("MKL's reproducibility mode is %s, not strict: results may change in their last bits "
                        "with the number of threads (import stcore before torch computes anything, and leave "
                        "MKL_CBWR unset)", mode)
    if params.input_pcs:
        x = input_pca(x, params.input_pcs)      # the expression is freed here if the caller handed it over
    n, g = x.shape
    gen = torch.Generator(device="cpu").manual_seed(params.seed)
    model = GraphContrastiveAE(g, params.n_latent, tied_decoder=params.tied_decoder, generator=gen).to(device)
    xt, x_sqnorm = _features(x, device)   # the one copy of the features the model reads
    del x
    a_hat = to_sparse_operator(gcn_norm(adj), device)
    r_op = to_sparse_operator(mean_operator(adj), device)
    opt = Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    rows = []
    t0 = time.perf_counter()
    model.train()
    ticks = [t0]
    # On the CPU the loss and its gradients are written out into buffers kept across epochs (the same
    # numbers bit for bit); CUDA's caching allocator already reuses memory, so there autograd does it.
    workspace = Workspace() if device.type == "cpu" else None
    hook = _EPOCH_HOOK.get()
    for epoch in range(1, params.epochs + 1):
        perm = row_permutation(n, gen).to(device)
        parts = model.training_loss(xt, a_hat, r_op, perm, x_sqnorm, g, workspace,
                                    recon_weight=params.recon_weight, contrast_weight=params.contrast_weight)
        total = float(parts.total.detach())
        if not math.isfinite(total):
            raise DivergenceError(f"training diverged at epoch {epoch}: loss is {total}; "
                                  f"lower lr (now {params.lr}) or check the input for extreme values")
        if rows and total > DIVERGENCE_FACTOR * max(rows[0][1], 1e-12):
            raise DivergenceError(f"training diverged at epoch {epoch}: loss {total:.3g} is more than "
                                  f"{DIVERGENCE_FACTOR:.0e} times the first epoch's {rows[0][1]:.3g}; "
                                  f"lower lr (now {params.lr}) or check the input for extreme values")
        opt.zero_grad()
        parts.total.backward()
        opt.step()
        rows.append((epoch, total, float(parts.reconstruction.detach()), float(parts.contrastive.detach())))
        ticks.append(time.perf_counter())
        if params.log_every and (epoch % params.log_every == 0 or epoch == 1):
            log.info("epoch %d/%d loss %.4f (reconstruction %.4f, contrastive %.4f)",
                     epoch, params.epochs, *rows[-1][1:])
        if hook is not None:
            hook(epoch, params.epochs, total)
    seconds = time.perf_counter() - t0
    workspace = None                           # its buffers go before the final forward makes its own
    model.eval()
    with torch.no_grad():
        out = model(xt, a_hat, r_op, row_permutation(n, gen).to(device))
        emb = out.latent.cpu().numpy()
        dec = out.decoded.cpu().numpy()
        w2 = model.decoder_weight.detach().cpu().numpy()
    if not (np.isfinite(emb).all() and np.isfinite(dec).all()):
        raise DivergenceError("training produced a non-finite embedding")
    losses = pd.DataFrame(rows, columns=LOSS_COLUMNS)
    from .provenance import malloc

    log.info("trained %d epochs in %.1f s on %s (%.4f s/epoch, malloc %s)", params.epochs, seconds, device,
             seconds / max(params.epochs, 1), malloc())
    return MethodResult(embedding=emb, decoded=dec, decoder_weight=np.ascontiguousarray(w2), losses=losses,
                        seconds=seconds, device=str(device), epoch_seconds=np.diff(ticks))


def fit_expression(x, n_comps: int = 50, seed: int = 0) -> MethodResult:
    """Expression-only baseline: PCA scores of the preprocessed expression (no graph, no model,
    no decoder: ``decoded`` and ``decoder_weight`` are empty)."""
    from sklearn.decomposition import PCA

    t0 = time.perf_counter()
    x = sp.csr_matrix(x, dtype=np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)
    n_comps = max(1, min(n_comps, min(x.shape) - 1))
    solver = "arpack" if sp.issparse(x) else "auto"
    scores = PCA(n_components=n_comps, svd_solver=solver, random_state=seed).fit_transform(x)
    scores = scores.astype(np.float32)
    return MethodResult(embedding=scores, seconds=time.perf_counter() - t0, device="cpu")
