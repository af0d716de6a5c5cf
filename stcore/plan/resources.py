"""Memory and wall time of the jobs from the size of the slide.

Snakemake evaluates these when a job is ready to run (its input exists); a dry run shows them as
<TBD>.  A retry (profiles set `retries`) comes back with `attempt` 2, 3, ... and asks for `attempt`
times the memory and time, so a job killed for either gets more.  The sizes come from the .h5ad /
10x .h5 header (spots x genes) without loading the matrix (h5py, which the Snakefile's environment
has, is imported when a size is read); the file size stands in when the header cannot be read.
Coefficients: each step's own peak memory (the high-water mark its log ends on), measured on 2-vCPU AMD EPYC
for simulated slides of 20,000 to 1,000,000 spots at depths 200 and 1,000 and DLPFC 151673
(benchmarks/results/sizing_peaks.tsv, made by benchmarks/sizing/collect.py), asked 1.2 to 1.6 times over, at the
start of a run and when the job is submitted (tests/test_plan.py holds every row to it; docs/cluster.md, "Peaks and
asks").  A job asked less than its peak is killed; more holds memory other jobs wait for.
"""
from __future__ import annotations

import os
from types import SimpleNamespace
from typing import NamedTuple

BASE_MB = 1024  # a peer's train: interpreter, numpy, scanpy, torch and the peer's package
SPARSE_FEATURES_MAX_DENSITY = 0.15      # stcore.train's: above it the model reads X dense


def file_mb(path):
    """Size of ``path`` in MiB; FileNotFoundError (name = path) while it does not exist yet,
    which Snakemake turns into <TBD>.  A :class:`Planned` file: the most it will have."""
    if isinstance(path, Planned):
        return path.mb
    return os.path.getsize(path) / 2**20


class Planned(NamedTuple):
    """A file a job reads that an earlier job of the run has not written yet (a simulated slide, a
    qc.h5ad, train's hvg.h5ad and graph.npz when the run starts), as large as it can be: its matrix's
    ``spots`` x ``genes`` with ``nnz`` stored entries (None: not a matrix), ``mb`` MiB on disk.  The size
    functions take it where they take a path (:meth:`JobResources.planned_matrix`, :meth:`JobResources.train_input`)."""

    spots: int | None = None
    genes: int | None = None
    nnz: int | None = None
    mb: float = 0.0


def _path(path):
    """``path`` as the size functions read it: a :class:`Planned` file as it is, else its name as text."""
    return path if isinstance(path, Planned) else str(path)


def csr_mb(rows, nnz):
    """MiB of a CSR matrix of ``rows`` rows and ``nnz`` float32 entries with int32 indices, uncompressed: what
    an .npz graph of it takes on disk, and several times what a gzip-written .h5ad's X of counts does (the
    demo's simulated slides: 10.4 MiB uncompressed, 3.0 MiB as written, names and coordinates included)."""
    return (8 * nnz + 4 * (rows + 1)) / 2**20


def files_mb(paths):
    """Total MiB of the files ``paths`` (a slide's inputs; none when its files are missing)."""
    return sum(file_mb(_path(p)) for p in ([paths] if isinstance(paths, (str, Planned)) else paths))


def slide_shape(path):
    """(spots, genes) of an .h5ad or 10x .h5 file from its header, or None."""
    import h5py

    if isinstance(path, Planned):
        return (path.spots, path.genes) if path.genes is not None else None

    try:
        with h5py.File(path, "r") as fh:
            if "matrix" in fh and "shape" in fh["matrix"]:  # 10x: genes x barcodes
                genes, spots = (int(v) for v in fh["matrix"]["shape"][:2])
                return spots, genes
            x = fh["X"]
            shape = x.shape if isinstance(x, h5py.Dataset) else x.attrs["shape"]
            return int(shape[0]), int(shape[1])
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None


def slide_nnz(path):
    """Stored entries of an .h5ad's X (spots x genes when X is dense) or a 10x .h5's matrix from its header,
    or None."""
    import h5py

    if isinstance(path, Planned):
        return path.nnz

    try:
        with h5py.File(path, "r") as fh:
            if "matrix" in fh and "data" in fh["matrix"]:       # 10x: CSC of genes x barcodes
                return int(fh["matrix"]["data"].shape[0])
            x = fh["X"]
            return int(x.shape[0] * x.shape[1]) if isinstance(x, h5py.Dataset) else int(x["data"].shape[0])
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None


def radius_pairs(path, radius):
    """Pairs of spots at most ``radius`` apart among the coordinates an .h5ad stores as obsm['spatial'] (a
    numeric n x 2 array, as the h5ad reader takes them), read alone (16 bytes a spot) and counted with a k-d
    tree (scipy's cKDTree.count_neighbors: no pair is held); None where the file holds no such array, or
    scipy is not there."""
    import h5py

    try:
        import numpy as np
        from scipy.spatial import cKDTree
    except ImportError:
        return None
    try:
        with h5py.File(path, "r") as fh:
            xy = fh["obsm"]["spatial"]
            if not isinstance(xy, h5py.Dataset) or xy.ndim != 2 or xy.shape[1] != 2 or xy.dtype.kind not in "iuf":
                return None
            xy = np.asarray(xy[()], dtype=np.float64)
    except (OSError, KeyError, ValueError, TypeError):
        return None
    if not len(xy) or not np.isfinite(xy).all():
        return None
    tree = cKDTree(xy)
    return (int(tree.count_neighbors(tree, float(radius))) - len(xy)) // 2     # each pair twice, each spot once


def dense_mb(path):
    """MiB of the slide as a dense float32 spots x genes matrix (file size as fallback)."""
    shape = slide_shape(path)
    if shape is None:
        return 4 * file_mb(path)
    return shape[0] * shape[1] * 4 / 2**20


def matrix_mb(path):
    """MiB of the slide's X in memory as the steps hold it: float32 CSR with int32 indices
    (8 bytes per stored entry), or dense float32; the dense size when the header says nothing."""
    nnz = slide_nnz(path)
    return dense_mb(path) if nnz is None else min(8 * nnz / 2**20, dense_mb(path))


SIMULATE_BASE_MB = 300         # simulate's interpreter, numpy, anndata
SIMULATE_PER_BLOCK = 11.6      # times a block's dense float32 spots x genes
SIMULATE_PER_MATRIX = 2.2      # times the slide's matrix in memory (matrix_mb)


def simulate_mem_mb(slide, attempt):
    """simulate (stcore.simulate) of the slide ``slide`` (:class:`Planned`: :meth:`JobResources.simulated_matrix`)
    draws its counts :data:`~.runs.SIMULATE_BLOCK` spots at a time as dense float64 arrays of those spots x its
    genes (about four at once), stacks the sparse blocks and writes them.  Measured peaks (2-vCPU AMD EPYC):
    benchmarks/results/sizing_peaks.tsv, 3,000 genes at depth 200, 20,000 spots 1,373 MB, 100,000 1,491, 300,000
    1,785, 1,000,000 3,690, 100,000 at depth 1,000 1,950; /usr/bin/time -v at depth 1,000, 99,856 spots 1.84 GiB,
    300,304 3.44 GiB, 10,000 spots x 20,000 genes 6.13 GiB.  Budget :data:`SIMULATE_BASE_MB`,
    :data:`SIMULATE_PER_BLOCK` times the block's float32 size and :data:`SIMULATE_PER_MATRIX` times the slide's
    most matrix: 1.24 to 1.48 times the first five (the others: 1.48 to 1.54).  Before, 1,024 MB, 12 and 2 times:
    1.5 to 2.1 times the first five."""
    from .runs import SIMULATE_BLOCK

    block = Planned(min(slide.spots, SIMULATE_BLOCK), slide.genes)
    return int(attempt * (SIMULATE_BASE_MB + SIMULATE_PER_BLOCK * dense_mb(block)
                          + SIMULATE_PER_MATRIX * matrix_mb(slide)))


def simulate_runtime(slide, attempt):
    """Minutes: measured 1,800 MiB of the slide's dense float32 spots x genes a minute (99,856 x 3,000: 38 s,
    300,304 x 3,000: 116 s, 10,000 x 20,000: 31 s, writing included, 2-vCPU AMD EPYC); budget 300."""
    return int(attempt * (10 + dense_mb(slide) / 300))


QC_BASE_MB = 350           # qc's interpreter, numpy, scanpy (no torch): measured 287 MB on DLPFC 151673
QC_PER_MATRIX = 4.0        # times the matrix in memory (matrix_mb)
STEREO_BASE_MB = 512       # qc of a Stereo-seq GEM (stereo_qc_mem_mb)


def qc_mem_mb(raw, attempt):
    """qc reads the raw counts (sparse) and writes a filtered copy (a group: its slides, joined).  Measured peaks
    (benchmarks/results/sizing_peaks.tsv) grow as about 3.3 times the matrix in memory (:func:`matrix_mb`: 8 bytes a
    stored entry) and 0.25 GB: DLPFC 151673 (18 MB of matrix) 287 MB; simulated slides of 3,000 genes, 20,000 spots
    at depth 200 (28 MB) 331, 100,000 (141 MB) 706, 300,000 (422 MB) 1,602, 1,000,000 (1,430 MB) 4,843; 100,000 at
    depth 1,000 (517 MB) 1,818.  Budget :data:`QC_BASE_MB` and :data:`QC_PER_MATRIX` times it for each file whose
    header gives its matrix (an .h5ad, a 10x .h5; a :class:`Planned` file: its entries), or 8 times the file's size
    where that is more (what else an .h5ad holds, layers and raw, is read too); 8 times the size of the other files
    (text, images): 1.25 to 1.47 times those peaks, at the start too (a simulated slide from its most entries).
    Before, 512 MB and 4 times the matrix: DLPFC 2.0 times its peak, and at the start a simulated slide at depth
    1,000 2.1 times (its entries then bounded by its counts)."""
    def each(path):
        if slide_shape(path) is None:
            return 8 * file_mb(path)
        held = QC_PER_MATRIX * matrix_mb(path)
        return held if isinstance(path, Planned) else max(held, 8 * file_mb(path))

    files = [raw] if isinstance(raw, (str, Planned)) else list(raw)
    return int(attempt * (QC_BASE_MB + sum(each(_path(f)) for f in files)))


def stereo_qc_mem_mb(gem, bin_size, attempt):
    """qc of a Stereo-seq GEM (format stereo, :func:`stcore.io.read_stereo`), whose header gives no matrix: the
    reader keeps a few bytes a line it has read and, per spot (bin), its name, coordinates and row.  Measured peaks
    (2-vCPU AMD EPYC, ``benchmarks/stereo_gem.py``, ``benchmarks/results/stereo_gem.tsv``): 4.9 million lines
    (51 MiB gzipped) in bins of 50 (3,639 spots) 520 MB, in bins of 1 (3.6 million spots) 2,075 MB; 49 million
    lines (508 MiB) in bins of 50, 788 MB: about 6 bytes a line and 430 a spot on 0.5 GB.  Budget
    :data:`STEREO_BASE_MB`, 16 bytes a line and 600 a spot, the lines counted as 8 bytes of gzipped file a line
    (measured 10.4) or 16 of text, the spots as the lines over a quarter of a bin's DNBs (every line its own spot in
    bins of 1 or 2): 1.2, 2.1 and 2.0 times those peaks.  8 times the file's size, as for another file without a header,
    asked 920 MB for the 2,075 MB of bins of 1."""
    path = _path(gem)
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    lines = os.path.getsize(path) / (8 if gzipped else 16)
    spots = lines / max(1.0, bin_size * bin_size / 4)
    return int(attempt * (STEREO_BASE_MB + (16 * lines + 600 * spots) / 2**20))


def read_minutes(path):
    """Minutes of qc's or hvg's work on the file ``path`` beyond their 10: measured (2-vCPU AMD EPYC,
    benchmarks/results/dag_hd_peaks.tsv, dag200k_peaks.tsv) qc 1,700 to 2,100 MB of the matrix in memory
    (:func:`matrix_mb`) a minute, hvg 780 to 870 (1,000,000 spots of 1,411 MB: 49 s and 109 s); budget 200 for a file
    whose header gives its matrix (a :class:`Planned` one: its entries), 50 MiB of file a minute for the others.
    Before, 50 MiB of file a minute for every file: a planned simulated slide, counted as an uncompressed CSR, was
    asked 42 minutes of qc and of hvg at 1,000,000 spots, and its prep job (simulate + qc + hvg + graph) 162."""
    path = _path(path)
    return matrix_mb(path) / 200 if slide_shape(path) is not None else file_mb(path) / 50


def qc_runtime(raw, attempt):
    """Minutes: 10 and :func:`read_minutes` of each file (a group: its slides' files)."""
    files = [raw] if isinstance(raw, (str, Planned)) else list(raw)
    return int(attempt * (10 + sum(read_minutes(f) for f in files)))


HVG_BASE_MB = 300          # hvg's interpreter, numpy, scanpy: measured 295 MB on DLPFC 151673
HVG_PER_MATRIX = 5.1       # times the matrix in memory (matrix_mb)


def hvg_mem_mb(h5ad, attempt):
    """hvg holds the counts, scanpy's float64 copies of them for seurat_v3 and the transform's.  Measured peaks
    (benchmarks/results/sizing_peaks.tsv) grow as about 4.1 times its qc.h5ad's matrix in memory and 0.2 GB: DLPFC
    151673 (18 MB) 295 MB; simulated, 20,000 spots at depth 200 (28 MB) 339, 100,000 (141 MB) 800, 300,000 (422 MB)
    1,942, 1,000,000 (1,430 MB) 6,140; 100,000 at depth 1,000 (517 MB) 2,301.  Budget :data:`HVG_BASE_MB` and
    :data:`HVG_PER_MATRIX` times it: 1.24 to 1.33 times those peaks (at the start, a simulated slide's most
    entries: up to 1.4).  Before, 1,024 MB and 6 times it: DLPFC 3.8 times its peak, 20,000 spots 3.5."""
    return int(attempt * (HVG_BASE_MB + HVG_PER_MATRIX * matrix_mb(_path(h5ad))))


def hvg_runtime(h5ad, attempt):
    """Minutes: 10 and :func:`read_minutes` of its qc.h5ad."""
    return int(attempt * (10 + read_minutes(h5ad)))


# graph, cluster, evaluate and export read the slide's matrix (hvg.h5ad; export: qc.h5ad, as many spots) and per
# spot its coordinates, graph, embedding and labels: (MB, MB a MB of that matrix in memory, KB a spot).  Measured
# peaks (benchmarks/results/sizing_peaks.tsv), simulated slides of 3,000 genes at depth 200: 20,000 spots (28 MB of
# matrix) graph 276, cluster 231, evaluate 368, export 417 MB; 100,000 (141 MB) 714, 521, 485, 743; 300,000 (422 MB)
# 357, 1,233, 918, 1,570; 1,000,000 (1,430 MB) 766, 3,716, 2,610, 4,518; 100,000 at depth 1,000 (517 MB) 228, 522,
# 828, 1,495; DLPFC 151673 (7 MB) 217, 217, 348, 382: about 0.2 to 0.35 GB, 0 (cluster) to 2 times the matrix and
# 0.6 (graph) to 3.7 (cluster) kB a spot; graph reads the matrix where it holds at most
# stcore.graph.PATTERN_MAX_VALUES entries (to judge the expression's spatial pattern), and only there is given it.
# Budget these: 1.24 to 1.55 times the peaks.  Before, 512 MB and (1.4, 2.5), (1.2, 5.0), (2.5, 2.5), (2.4, 2.0):
# cluster 1.9 to 3.9 times its peaks, evaluate 1.6 to 3.6, export 1.3 to 1.8, graph 5 to 11 on slides over that many
# entries.
SLIDE_STEPS = {"graph": (260, 4.0, 0.75), "cluster": (250, 0.15, 4.8), "evaluate": (420, 1.25, 1.25),
               "export": (460, 2.75, 1.85)}


def slide_step_mem_mb(step, h5ad, attempt):
    """Memory of ``step`` (graph, cluster, evaluate, export: :data:`SLIDE_STEPS`) of a slide whose matrix ``h5ad``
    (its hvg.h5ad; export's qc.h5ad) holds; graph's share of the matrix only where it reads it (at most
    stcore.graph.PATTERN_MAX_VALUES stored entries, or entries not known)."""
    h5ad = _path(h5ad)
    base, per_matrix, per_spot_kb = SLIDE_STEPS[step]
    shape = slide_shape(h5ad)
    spots = shape[0] if shape is not None else dense_mb(h5ad) * 2**20 / 4       # no header: a column a spot at most
    if step == "graph":
        from ..graph import PATTERN_MAX_VALUES

        nnz = slide_nnz(h5ad)
        per_matrix = per_matrix if nnz is None or nnz <= PATTERN_MAX_VALUES else 0.0
    return int(attempt * (base + per_matrix * matrix_mb(h5ad) + per_spot_kb * spots / 1024))


def train_epochs(settings, peer):
    """The epochs a train job runs: the built-in models' `epochs`; a peer's own epoch setting
    (stcore/peers.py), else its longest default."""
    if peer:
        own = settings.get("peer") or {}
        return int(max([own[k] for k in ("epochs", "n_epochs", "max_epochs") if k in own] or [1000]))
    return int(settings.get("epochs", 600))


def peer_blocks(settings) -> float:
    """How many times its default's memory a peer's matrix takes under the run's train settings: BANKSY's
    holds max_m + 2 blocks of the genes (:func:`stcore.peers.banksy_memory_mb`), and the registry's
    bytes_per_value is its default max_m's; 1 for every other setting (only BANKSY takes max_m)."""
    from ..registry import PEER_SETTINGS

    max_m = (settings.get("peer") or {}).get("max_m")
    if max_m is None:
        return 1.0
    return (int(max_m) + 2) / (int(PEER_SETTINGS["banksy"]["max_m"]) + 2)


TRAIN_BASE_MB = 550        # train's interpreter, numpy, scanpy and torch: measured 411 MB on DLPFC 151673
TRAIN_PER_MATRIX = 1.8     # times X in memory (matrix_mb), as read
TRAIN_ACTIVATIONS = 20     # floats a spot, times the model's n_latent
CUDA_HOST_MB = 1024        # a train on CUDA: torch's CUDA libraries and context in host memory (not measured here)


def train_mem_mb(facts, settings, h5ad, graph, attempt, cuda=False):
    """train holds X as read (sparse), the features the model reads (CSR with its transpose
    when X is sparse enough, the input PCA scores, or X dense), the graph, and per spot the
    N x d activations of one epoch.  Measured peaks of the built-in model (benchmarks/results/sizing_peaks.tsv; 100
    input PCs, d 64): 20,000 spots of 28 MB of X 648 MB, 100,000 of 141 MB 1,001, 300,000 of 422 MB 2,073,
    1,000,000 of 1,430 MB 6,065, 100,000 of 517 MB 1,649; DLPFC 151673 (its 3,000 genes read as they are) 411.
    Budget :data:`TRAIN_BASE_MB`, :data:`TRAIN_PER_MATRIX` times X, the features and :data:`TRAIN_ACTIVATIONS` x d
    floats a spot: 1.21 to 1.56 times those peaks.  Before, 1,024 MB, X once and 40 x d floats a spot: 2.1 to 2.7
    times them from DLPFC to 300,000 spots.  The peers densify: the registry's bytes_per_value for every spot and gene
    (ten float32 copies; BANKSY's measured dense matrix, times its max_m's blocks: :func:`peer_blocks`), plus eight
    float64 spots x spots matrices for those that hold them (the registry's dense_spots: the GraphST package, SpaGCN),
    on :data:`BASE_MB`.  ``facts``: the registry's facts of the model; ``settings``: the run's train settings;
    ``cuda``: the job trains on a GPU, which the peaks above (CPU runs) do not hold: :data:`CUDA_HOST_MB` more."""
    h5ad = _path(h5ad)
    graph = [graph] if isinstance(graph, (str, os.PathLike, Planned)) else list(graph or [])   # none: reading none
    graph_mb = 4 * sum(file_mb(_path(g)) for g in graph)
    shape = slide_shape(h5ad)
    if not facts.builtin:
        spots_mb = 8 * 8 * shape[0] ** 2 / 2**20 if facts.dense_spots and shape is not None else 0
        return int(attempt * (BASE_MB + facts.bytes_per_value * peer_blocks(settings) / 4 * dense_mb(h5ad)
                              + graph_mb + spots_mb))
    x_mb = matrix_mb(h5ad)
    base = TRAIN_BASE_MB + (CUDA_HOST_MB if cuda else 0)
    if shape is None:
        return int(attempt * (base + 10 * dense_mb(h5ad) + graph_mb))
    pcs = settings.get("input_pcs")
    if pcs:
        features = 2 * shape[0] * pcs * 4 / 2**20 + (shape[1] ** 2) * 8 / 2**20      # scores; G x G covariance
    elif x_mb < SPARSE_FEATURES_MAX_DENSITY * 2 * dense_mb(h5ad):                      # by bytes
        features = 2 * x_mb
    else:
        features = dense_mb(h5ad)
    activations = shape[0] * TRAIN_ACTIVATIONS * int(settings.get("n_latent", 64)) * 4 / 2**20
    return int(attempt * (base + TRAIN_PER_MATRIX * x_mb + features + activations + graph_mb))


def train_runtime(facts, settings, h5ad, attempt):
    """Minutes on CPU (and at least 15).  The built-in models: an epoch took 1-2e-5 s per spot on
    2 cores from DLPFC to 1,000,000 spots (benchmarks/README.md); budget 5e-5.  The peers: about
    2.4e-8 s per epoch x spot x gene was measured on 2 cores; budget 1e-7."""
    h5ad = _path(h5ad)
    shape = slide_shape(h5ad)
    if shape is None:
        spots, genes = dense_mb(h5ad) * 2**20 / 4, 1
    else:
        spots, genes = shape
    per_epoch = spots * 5e-5 if facts.builtin else spots * genes * 1e-7
    return int(attempt * (15 + train_epochs(settings, not facts.builtin) * per_epoch / 60))


def given(overwrite_resources, rule, name):
    """The value a profile or ``--set-resources`` gives resource ``name`` of ``rule``, as written (a
    number, text, or a function where one was given; Snakemake keeps it wrapped with the value in
    ``.raw``), or None where none is given."""
    value = (overwrite_resources or {}).get(rule, {}).get(name)
    return getattr(value, "raw", value)


class JobResources:
    """The rules' resources as Snakemake asks for them, ``(wildcards, input, attempt)``, from the
    ``plan`` (:class:`~.runs.Plan`) and the job's input files: qc from the slide's files, a group
    as qc from the qc files of its slides, hvg from its qc.h5ad (before qc ran: the slide's
    matrix, :meth:`hvg_input`), train from the model's registry facts, the method's own train settings
    (the config's block with the method's on top) and its hvg.h5ad and graph.npz (before hvg ran: what they
    will hold at most, :meth:`train_input`)."""

    def __init__(self, plan):
        self.plan = plan
        self._pairs = {}        # radius_pairs of a file, counted once a run

    def qc_input(self, wildcards, input):
        """The files qc's job is sized from: the slide's files; for a slide the simulate rule makes, before
        it wrote it, the file as large as it can be (:meth:`planned_matrix`), so that a SLURM profile's prep
        job (simulate, qc, hvg and graph in one job, submitted before simulate ran) and the start-of-run
        check (:func:`check_slurm`) count qc's memory and time."""
        from ..formats import slide_files

        raw = self.plan.raw_input(wildcards.sample, slide_files)       # not the job's input: a stamp stands for them
        if all(os.path.exists(f) for f in raw) or self.plan.simulated_of(wildcards.sample) is None:
            return raw
        planned = self.planned_matrix(wildcards.sample)
        return raw if planned is None else [planned]

    def qc_mem_mb(self, wildcards, input, attempt):
        bin_size = self.plan.bin_size(wildcards.sample) if wildcards.sample in self.plan.slides else None
        raw = self.qc_input(wildcards, input)
        if bin_size is not None and all(os.path.isfile(str(f)) for f in raw):
            return max(stereo_qc_mem_mb(f, bin_size, attempt) for f in raw)
        return qc_mem_mb(raw, attempt)

    def qc_runtime(self, wildcards, input, attempt):
        return qc_runtime(self.qc_input(wildcards, input), attempt)

    def group_input(self, wildcards, input):
        """The files a group's job is sized from: the qc.h5ad of each of its slides, or before its qc wrote it
        what it will hold at most (:meth:`planned_matrix`), so that the start-of-run check sees the group job."""
        slides = [input.slides] if isinstance(input.slides, str) else [str(f) for f in input.slides]
        group = self.plan.groups.get(wildcards.sample, [])
        names = dict(zip(self.plan.group_inputs(wildcards.sample), group)) if group else {}
        return [f if os.path.exists(f) or f not in names else (self.planned_matrix(names[f]) or f) for f in slides]

    def group_mem_mb(self, wildcards, input, attempt):
        return qc_mem_mb(self.group_input(wildcards, input), attempt)

    def hvg_input(self, wildcards, input):
        """The file hvg's job is sized from: its qc.h5ad, or before qc wrote it the slide's matrix
        as qc reads it (:meth:`slide_matrix`; qc.h5ad holds at most as many spots and genes).  A SLURM
        profile's prep job (qc, hvg and graph in one job) is sized when it is submitted, before qc
        ran: hvg's size, unknown then, was left out of the job's memory and time.  A slide with no
        such file (a slide the simulate rule makes, a group's): what its qc.h5ad will hold at most
        (:meth:`planned_matrix`); where that is not known either, the qc.h5ad, whose size Snakemake
        then takes as not known yet."""
        h5ad = str(input.h5ad)
        if os.path.exists(h5ad):
            return h5ad
        return self.slide_matrix(wildcards.sample) or self.planned_matrix(wildcards.sample) or h5ad

    def slide_matrix(self, sample):
        """The slide's matrix as qc reads it: the largest file of the slide whose header gives spots x
        genes; None for a slide with no such file (a group's, made by its own job)."""
        row = self.plan.slides.get(sample)
        if row is None or row.get("format") == "group":
            return None
        from ..formats import slide_files

        matrices = [f for f in self.plan.raw_input(sample, slide_files) if slide_shape(f) is not None]
        return max(matrices, key=matrix_mb) if matrices else None

    def planned_matrix(self, sample):
        """What the qc.h5ad of ``sample`` will hold at most (:class:`Planned` spots, genes, stored entries, MiB on
        disk), read before any job of the run: a slide's matrix as qc reads it (:meth:`slide_matrix`; qc only drops
        spots and genes), its file's size (as hvg is sized from it, :meth:`hvg_input`); a slide the simulate rule
        makes, not written yet, the spots and genes its config's ``simulate`` entry gives
        (:func:`~.runs.simulated_shape`), at most :func:`~.runs.simulated_entries` stored entries, and those as an
        uncompressed CSR on disk (:func:`csr_mb`; the simulate and qc rules write them gzip-compressed); a group's,
        its slides' spots together on the fewest genes of one of them (the group joins them on the genes they
        share), their entries on those genes, their files together.  None where a slide of it has no such file
        (missing: its qc job names it)."""
        if sample in self.plan.groups:
            parts = [self.planned_matrix(s) for s in self.plan.groups[sample]]
            if not parts or any(part is None for part in parts):
                return None
            genes = min(part.genes for part in parts)
            return Planned(sum(part.spots for part in parts), genes,
                           sum(min(part.nnz, part.spots * genes) for part in parts), sum(part.mb for part in parts))
        matrix = self.slide_matrix(sample)
        if matrix is not None:
            (spots, genes), nnz = slide_shape(matrix), slide_nnz(matrix)
            nnz = spots * genes if nnz is None else min(nnz, spots * genes)
            return Planned(spots, genes, nnz, file_mb(matrix))
        if self.plan.simulated_of(sample) is None:
            return None
        return self.simulated_matrix(self.plan.simulated_of(sample))

    def simulated_matrix(self, name):
        """The slide the simulate rule makes from the config's ``simulate`` entry ``name``, as large as it can be
        (:class:`Planned`): the spots and genes :func:`~.runs.simulated_shape` gives, at most
        :func:`~.runs.simulated_entries` stored entries, and those as an uncompressed CSR on disk (:func:`csr_mb`)."""
        from .runs import simulated_entries, simulated_shape

        settings = (self.plan.config.get("simulate") or {})[name]
        (spots, genes), nnz = simulated_shape(settings), simulated_entries(settings)
        return Planned(spots, genes, nnz, csr_mb(spots, nnz))

    def simulate_mem_mb(self, wildcards, input, attempt):
        """simulate's memory, from its slide as its ``simulate`` entry gives it (:meth:`simulated_matrix`), so that
        it grows with ``attempt`` as qc's, hvg's and train's do and the start-of-run check (:func:`check_slurm`)
        sees it (it had none: a profile's default-resources, the same on every retry)."""
        return simulate_mem_mb(self.simulated_matrix(wildcards.name), attempt)

    def simulate_runtime(self, wildcards, input, attempt):
        return simulate_runtime(self.simulated_matrix(wildcards.name), attempt)

    def planned_edges(self, sample, spots):
        """The most stored entries ``sample``'s graph.npz will have (a symmetric graph: twice its edges) when
        ``spots`` is the most spots of its hvg.h5ad: knn, 2 x n_neighbors a spot; radius, twice the pairs of
        spots within graph.radius among the slide's own coordinates (:func:`radius_pairs`; qc only drops spots),
        a group's slide by slide (its graph joins no two slides).  None where that is not known before the graph
        is built: a radius graph of a slide whose coordinates are not an .h5ad's obsm['spatial'] (another
        format's reader makes them; a simulated slide not made yet), or one over the mean neighbours the graph
        step refuses (stcore.graph.MAX_RADIUS_NEIGHBOURS: its own message, and train never runs)."""
        settings = self.plan.config.get("graph") or {}
        if settings.get("mode", "knn") == "knn":
            return 2 * int(settings["n_neighbors"]) * spots if settings.get("n_neighbors") else None
        if settings.get("mode") != "radius" or not settings.get("radius"):
            return None
        pairs = 0
        for slide in self.plan.groups.get(sample, [sample]):
            matrix = self.slide_matrix(slide) if self.plan.slides[slide].get("format") == "h5ad" else None
            if matrix is None:
                return None
            stat = os.stat(matrix)
            key = (os.path.abspath(matrix), stat.st_size, stat.st_mtime_ns, float(settings["radius"]))
            if key not in self._pairs:
                self._pairs[key] = radius_pairs(matrix, settings["radius"])
            if self._pairs[key] is None:
                return None
            pairs += self._pairs[key]
        from ..graph import MAX_RADIUS_NEIGHBOURS

        total = sum(slide_shape(self.slide_matrix(s))[0] for s in self.plan.groups.get(sample, [sample]))
        return None if 2 * pairs > MAX_RADIUS_NEIGHBOURS * total else 2 * pairs

    def train_input(self, wildcards, input):
        """(hvg.h5ad, graph) train's job is sized from: its files, or before hvg wrote hvg.h5ad what they
        will be at most (:class:`Planned`), so that the start-of-run check (:func:`check_slurm`) sees the
        train jobs, the largest of a run.  hvg.h5ad: the spots of the slide's (or group's) qc.h5ad at most
        (:meth:`planned_matrix`: a slide's matrix, a simulated slide's config, a group's slides together),
        hvg.n_top_genes of its genes (all where it has fewer), its stored entries (at most spots x those
        genes); graph.npz: a symmetric CSR of at most :meth:`planned_edges` float32 entries (knn: 2 x
        n_neighbors a spot; radius: twice the pairs within the radius among the slide's coordinates),
        uncompressed.  Unknown (<TBD>, as before) where a slide's file is missing, or a radius graph's
        entries are not known before it is built (:meth:`planned_edges`)."""
        graph = [str(g) for g in ([input.graph] if isinstance(input.graph, str) else list(input.graph or []))]
        planned = self.hvg_file(wildcards, input)
        if not isinstance(planned, Planned):
            return planned, graph
        spots = planned.spots
        if any(not os.path.exists(g) for g in graph):
            entries = self.planned_edges(wildcards.sample, spots)
            if entries is None:
                return str(input.h5ad), graph
            graph = [g if os.path.exists(g) else Planned(mb=csr_mb(spots, entries)) for g in graph]
        return planned, graph

    def hvg_file(self, wildcards, input):
        """The hvg.h5ad ``input.h5ad`` a job reads, or before hvg wrote it what it will hold at most (:class:`Planned`):
        the spots of the slide's (or group's) qc.h5ad at most (:meth:`planned_matrix`), hvg.n_top_genes of its genes
        (all where it has fewer), its stored entries (at most spots x those genes); its name where that is not
        known (Snakemake then takes its size as not known yet)."""
        h5ad = str(input.h5ad)
        matrix = None if os.path.exists(h5ad) else self.planned_matrix(wildcards.sample)
        if matrix is None:
            return h5ad
        genes = min(matrix.genes, int((self.plan.config.get("hvg") or {}).get("n_top_genes") or matrix.genes))
        return Planned(matrix.spots, genes, min(matrix.nnz, matrix.spots * genes))

    def graph_mem_mb(self, wildcards, input, attempt):
        """graph, cluster and evaluate from the hvg.h5ad they read (:meth:`hvg_file`), export from its qc.h5ad
        (:meth:`hvg_input`), as :func:`slide_step_mem_mb` sizes them."""
        return slide_step_mem_mb("graph", self.hvg_file(wildcards, input), attempt)

    def cluster_mem_mb(self, wildcards, input, attempt):
        return slide_step_mem_mb("cluster", self.hvg_file(wildcards, input), attempt)

    def evaluate_mem_mb(self, wildcards, input, attempt):
        return slide_step_mem_mb("evaluate", self.hvg_file(wildcards, input), attempt)

    def export_mem_mb(self, wildcards, input, attempt):
        return slide_step_mem_mb("export", self.hvg_input(wildcards, SimpleNamespace(h5ad=input.qc)), attempt)

    def hvg_mem_mb(self, wildcards, input, attempt):
        return hvg_mem_mb(self.hvg_input(wildcards, input), attempt)

    def hvg_runtime(self, wildcards, input, attempt):
        return hvg_runtime(self.hvg_input(wildcards, input), attempt)

    def train_mem_mb(self, wildcards, input, attempt):
        method = wildcards.method
        h5ad, graph = self.train_input(wildcards, input)
        return train_mem_mb(self.plan.facts_of(method), self.plan.merged("train", method), h5ad, graph, attempt,
                            cuda=self.plan.train_gpus(method) > 0)

    def train_runtime(self, wildcards, input, attempt):
        method = wildcards.method
        h5ad, _ = self.train_input(wildcards, input)
        return train_runtime(self.plan.facts_of(method), self.plan.merged("train", method), h5ad, attempt)


# What a SLURM cluster offers, as sinfo says it (one line per node and partition): a job that asks for
# more CPUs or memory than any node of its partition has, or more time than the partition's MaxTime,
# is never started (squeue's reason PartitionConfig, PartitionTimeLimit, ...; sbatch refuses some), and
# Snakemake would wait for it without end.
SINFO = ("sinfo", "--noheader", "--Node", "--format=%P|%N|%c|%m|%l|%a")


def ask_slurm(command=SINFO, timeout=30):
    """What ``command`` prints, or None where it is missing, fails or does not answer within ``timeout``
    seconds (a run is never stopped because the cluster was not asked)."""
    import subprocess

    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def slurm_minutes(text):
    """Minutes of a SLURM time limit as sinfo writes it ([days-]hours:minutes:seconds, minutes:seconds);
    None for no limit (infinite, UNLIMITED) or a value it cannot read."""
    text = (text or "").strip()
    days, _, rest = text.rpartition("-")
    try:
        parts = [int(p) for p in rest.split(":")]
        days = int(days or 0)
    except ValueError:
        return None
    if len(parts) > 3:
        return None
    parts = [0] * (3 - len(parts)) + parts
    return (days * 24 + parts[0]) * 60 + parts[1] + parts[2] / 60


# A partition's own limits on what one job may have of a node, which sinfo does not print: MaxCPUsPerNode,
# MaxMemPerNode or MaxMemPerCPU (scontrol prints the one set).  Measured on the test cluster (SLURM 22.05,
# EnforcePartLimits=NO, the default): a job over MaxCPUsPerNode or MaxMemPerNode is accepted and left PENDING
# without end (PartitionConfig, MaxMemPerLimit); one whose mem_mb over MaxMemPerCPU needs more CPUs than a node
# has (SLURM raises its CPUs to mem / MaxMemPerCPU) is refused by sbatch ("CPU count per node can not be
# satisfied").
SCONTROL_PARTITIONS = ("scontrol", "show", "partition", "--oneliner")
_LIMITS = {"MaxCPUsPerNode": "max_cpus", "MaxMemPerNode": "max_mem", "MaxMemPerCPU": "max_mem_per_cpu"}


def partition_limits(text):
    """{partition: {"max_cpus", "max_mem", "max_mem_per_cpu"}} (CPUs, MB; None: no limit) from scontrol's
    answer ``text`` (:data:`SCONTROL_PARTITIONS`, one line per partition); {} where it says nothing readable."""
    limits = {}
    for line in (text or "").splitlines():
        fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
        if "PartitionName" not in fields:
            continue
        limits[fields["PartitionName"]] = {key: _whole(fields.get(name)) for name, key in _LIMITS.items()}
    return limits


def slurm_partitions(text, limits=None):
    """{partition: {"default": bool, "up": bool, "minutes": its MaxTime (None: no limit), "nodes": {node:
    (CPUs, memory in MB)}, "max_cpus", "max_mem", "max_mem_per_cpu": what it gives one job of a node (None:
    no limit)}} from sinfo's answer ``text`` in :data:`SINFO`'s format and scontrol's ``limits`` (text in
    :data:`SCONTROL_PARTITIONS`' format, :func:`partition_limits`; None: no limits known); {} where sinfo
    says nothing readable."""
    partitions = {}
    for line in (text or "").splitlines():
        fields = line.strip().split("|")
        if len(fields) != 6:
            continue
        name, node, cpus, mem, limit, avail = fields
        try:
            size = (int(cpus.rstrip("+")), int(mem.rstrip("+")))
        except ValueError:
            continue
        part = partitions.setdefault(name.rstrip("*"), {"default": name.endswith("*"), "up": avail == "up",
                                                        "minutes": slurm_minutes(limit), "nodes": {}})
        part["nodes"][node] = size
    known = partition_limits(limits)
    for name, part in partitions.items():
        part.update(known.get(name) or dict.fromkeys(_LIMITS.values()))
    return partitions


def _whole(value):
    """``value`` as a whole number, or None (a size Snakemake does not know yet: <TBD>)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def job_partition(partition, partitions):
    """(name, facts) of the partition a job goes to: the one it names (``partition``: its slurm_partition),
    else the cluster's default; (name, None) where sinfo named no such partition or none of its nodes."""
    name = partition or next((p for p, v in (partitions or {}).items() if v["default"]), None)
    part = (partitions or {}).get(name)
    return name, (part if part and part["nodes"] else None)


def memory_limit(name, part):
    """(MB, words): the most memory one job of partition ``name`` (``part``, as :func:`job_partition` gives it)
    can have on a node, and where that limit comes from: the largest node's memory, or the partition's
    MaxMemPerNode where that is less (a job over it waits PENDING without end, MaxMemPerLimit), or its
    MaxMemPerCPU times the CPUs it gives a job of a node where that is less still."""
    most = max(m for _, m in part["nodes"].values())
    limits = [(most, f"the largest node of partition '{name}' has ({most} MB)")]
    scontrol = f"scontrol show partition {name}"
    if part.get("max_mem"):
        limits.append((part["max_mem"], f"partition '{name}' gives a job of a node ({part['max_mem']} MB, its "
                                        f"MaxMemPerNode; {scontrol})"))
    if part.get("max_mem_per_cpu"):
        room = max(min(c, part.get("max_cpus") or c) for c, _ in part["nodes"].values())
        limits.append((part["max_mem_per_cpu"] * room, f"partition '{name}' gives a job of a node "
                       f"({part['max_mem_per_cpu'] * room} MB: its MaxMemPerCPU {part['max_mem_per_cpu']} MB times the "
                       f"{room} CPUs it gives a job; {scontrol})"))
    return min(limits, key=lambda limit: limit[0])


def _beyond(asks, partitions):
    """What a job asks for that its partition can never give it (more than any of its nodes has, more than
    the partition gives a job of a node: MaxCPUsPerNode, MaxMemPerNode, MaxMemPerCPU; more than its MaxTime),
    as (what, asked, offers, the most it can have, squeue's reason while it waits), or None
    (it fits, or its partition is not one sinfo named: sbatch refuses that itself)."""
    name, part = job_partition(asks.get("slurm_partition"), partitions)
    if part is None:
        return None
    cpus, mem, minutes = (_whole(asks.get(key)) for key in ("cpus", "mem_mb", "runtime"))
    memory = (f"{mem} MB of memory (mem_mb)" if asks.get("mem_mb_per_cpu") is None else
              f"{mem} MB of memory (mem_mb_per_cpu {asks['mem_mb_per_cpu']} MB x its {max(cpus or 1, 1)} CPUs: the "
              f"slurm executor asks for mem_mb_per_cpu, where it is given, in place of mem_mb)")
    largest = max(part["nodes"].values())
    most_cpus, most_mem = max(c for c, _ in part["nodes"].values()), max(m for _, m in part["nodes"].values())
    offers = (f"the largest node of partition '{name}' has {most_cpus} CPUs and {most_mem} MB "
              f"(sinfo -N -p {name} -o '%N %c %m')" if largest == (most_cpus, most_mem) else
              f"the nodes of partition '{name}' have at most {most_cpus} CPUs, at most {most_mem} MB "
              f"(sinfo -N -p {name} -o '%N %c %m')")
    if not any(cpus is None or cpus <= c for c, _ in part["nodes"].values()):
        return ("cpus", f"{cpus} CPUs (--cpus-per-task, the step's threads)", offers, most_cpus, "PartitionConfig")
    if not any(mem is None or mem <= m for _, m in part["nodes"].values()):
        most, words = memory_limit(name, part)         # the fix: what the partition gives a job, where less
        return ("mem_mb", memory, offers if most == most_mem else
                f"{offers}, and a job gets at most what {words}", most, None)
    if not any((cpus is None or cpus <= c) and (mem is None or mem <= m) for c, m in part["nodes"].values()):
        return ("both", f"{cpus} CPUs and {mem} MB together", offers + ", none both", None, None)
    scontrol = f"scontrol show partition {name}"
    cap = part.get("max_cpus")
    if cpus is not None and cap is not None and cpus > cap:
        return ("cpus", f"{cpus} CPUs (--cpus-per-task, the step's threads)",
                f"partition '{name}' gives a job at most {cap} CPUs of a node (its MaxCPUsPerNode; {scontrol})", cap,
                "PartitionConfig")
    cap = part.get("max_mem")
    if mem is not None and cap is not None and mem > cap:
        return ("mem_limit", memory,
                f"partition '{name}' gives a job at most {cap} MB of a node (its MaxMemPerNode; {scontrol})",
                memory_limit(name, part)[0], "MaxMemPerLimit")
    per_cpu = part.get("max_mem_per_cpu")
    if mem is not None and per_cpu:     # SLURM gives the job ceil(mem / MaxMemPerCPU) CPUs where that is more
        room = max(min(c, part.get("max_cpus") or c) for c, m in part["nodes"].values() if mem <= m)
        need = max(cpus or 1, -(-mem // per_cpu))
        if need > room:
            return ("mem_limit", memory if asks.get("mem_mb_per_cpu") is not None else
                    f"{memory} on {cpus or 1} CPUs",
                    f"partition '{name}' allows at most {per_cpu} MB per CPU (its MaxMemPerCPU; {scontrol}), so SLURM "
                    f"would raise the job to {need} CPUs, more than a node of it gives a job ({room}), and sbatch "
                    f"refuses it", per_cpu * room, None)
    if minutes is not None and part["minutes"] is not None and minutes > part["minutes"]:
        return ("runtime", f"{minutes} minutes (runtime)",
                f"partition '{name}' allows at most {part['minutes']:g} minutes (its MaxTime; sinfo -p {name} -o %l)",
                int(part["minutes"]), "PartitionTimeLimit")
    return None


_UNITS = {"mem_mb": "MB", "runtime": "minutes", "cpus": "CPUs"}


def _memory_fix(asks, most, step="<step>"):
    """The --set-resources that asks for at most ``most`` MB of a job that asks ``asks``: mem_mb, or where the
    job is given mem_mb_per_cpu (which the slurm executor asks for in place of mem_mb), mem_mb_per_cpu of
    ``most`` over its CPUs."""
    if asks.get("mem_mb_per_cpu") is None:
        return f"'{step}:mem_mb={most}'"
    cpus = max(_whole(asks.get("cpus")) or 1, 1)
    return f"'{step}:mem_mb_per_cpu={int(most) // cpus}'"


def _beyond_at_some_attempt(asks, partitions, retries=False):
    """(the attempt, the problem :func:`_beyond` finds) of a job that asks for what its partition can never
    give, or None: at attempt 1; with ``retries``, at the first retry that does where attempt 1 fits.
    ``asks["attempts"]``: what each attempt asks (a retry may ask more: the rules' `attempt` times the first,
    or a given `40*attempt`); without it, the asks are attempt 1's."""
    attempts = asks.get("attempts") or [asks]
    if not retries:
        problem = _beyond(attempts[0], partitions)
        return (1, problem) if problem else None
    if _beyond(attempts[0], partitions):
        return None
    for attempt, each in enumerate(attempts[1:], start=2):
        problem = _beyond(each, partitions)
        if problem:
            return attempt, problem
    return None


def _attempt_words(asks, attempt, what):
    """How a line says that ``attempt`` (of the job's ``asks``) is the first that asks too much: '' for the first
    attempt; else the attempt, how many the profile's retries allow, and what each asks of ``what``."""
    attempts = asks.get("attempts") or [asks]
    if attempt == 1:
        return ""
    key = what if what in _UNITS else "mem_mb"
    each = ", ".join(str(_whole(a.get(key))) for a in attempts)
    return (f" at attempt {attempt} of {len(attempts)} (the run's retries: {len(attempts) - 1}; {key} {each} "
            f"{_UNITS[key]} on its {len(attempts)} attempts: a retry of a failed job asks again, the rules' sizes "
            f"and a given '{key}=N*attempt' grow with the attempt)")


def unschedulable(jobs, partitions, retries=False):
    """One line per step whose jobs ask SLURM for what no node or partition of the cluster can ever give
    (more CPUs or memory than any node of the job's partition has, more time than its MaxTime), naming the
    first such job's sample, what it asks for, what the cluster offers and the fix; [] where every job fits
    or the cluster said nothing (``partitions``: :func:`slurm_partitions`).  Judged at attempt 1, a refusal;
    with ``retries``, at the retries the profile allows of jobs whose attempt 1 fits, a warning: the run
    goes on, and only a job that fails that often reaches the retry SLURM could never start.  ``jobs``: (step, sample, asks) with asks {"cpus", "mem_mb",
    "runtime", "slurm_partition"} of attempt 1 and, where a job may be retried, "attempts": those of each
    attempt (1, 2, ...), a size not known yet (<TBD>) left out; a group job (profiles' groups:, one SLURM
    job for several steps) has its group's name as step and its steps' names in asks["steps"]."""
    found, steps_of = {}, {}
    for step, sample, asks in sorted(jobs, key=lambda job: (str(job[0]), str(job[1]))):   # the first slide by name
        if asks.get("steps"):
            steps_of[step] = asks["steps"]
        problem = _beyond_at_some_attempt(asks, partitions, retries) if partitions else None
        if problem and step not in found:
            found[step] = (sample, asks, problem, [])
        elif problem:
            found[step][3].append(sample)
    lines = []
    for step, (sample, asks, (attempt, (what, asked, offers, most, reason)), others) in found.items():
        more = f" (and {len(others)} more of its jobs)" if others else ""
        at = _attempt_words(asks, attempt, what)
        fewer = (f"; or fewer retries, --retries {attempt - 2} on the command line (retries: in the profile), so that "
                 f"attempt {attempt - 1}, the last, fits" if attempt > 1 else "")
        waits = f" (it would wait in the queue without end, squeue's reason {reason})" if reason else ""
        times = "once" if attempt == 2 else f"{attempt - 1} times"
        never, warn = ((f"SLURM could never start it{waits}, so nothing was submitted", "") if attempt == 1 else
                       (f"SLURM could never start that retry{waits}; the run goes on (attempt 1 fits), but a job of "
                        f"it that fails {times} reaches that retry", "warning: "))
        steps = steps_of.get(step)
        if steps:                   # a group job: what it asks is its steps' (the sum of their runtimes)
            key = "mem_mb" if asks.get("mem_mb_per_cpu") is None else "mem_mb_per_cpu"
            lowered = {"runtime": "runtime (the group asks the sum of its steps': default-resources: runtime: in "
                                  "the profile for the steps without an estimate of their own, or --set-resources "
                                  f"'<step>:runtime=N' for each, with {' + '.join(steps)} at most {most})",
                       "mem_mb": f"{key} (--set-resources {_memory_fix(asks, most)} for each of its steps)",
                       "mem_limit": f"{key} (--set-resources {_memory_fix(asks, most)} for each of its steps)",
                       "cpus": f"threads (--set-threads <step>={most} for each of its steps)"}.get(what, "threads or memory")
            lines.append(f"{warn}sample '{sample}', group job '{step}' of steps {', '.join(steps)}{more} asks SLURM{at} "
                         f"for {asked}, but {offers}: {never}. Fix: "
                         f"lower its steps' {lowered}, or delete their lines under groups: in the profile (each step "
                         f"is then a job of its own), or a partition that allows more (slurm_partition in the "
                         f"profile's default-resources){fewer}")
            continue
        fix = {"cpus": f"--set-threads {step}={most} on the command line (or set-threads: {{{step}: {most}}} in the "
                       f"profile), or a partition with larger nodes (set-resources: {step}: slurm_partition: in the "
                       f"profile)",
               "mem_mb": f"ask for at most what a node has, --set-resources {_memory_fix(asks, most, step)} on the "
                         f"command line (or under set-resources: in the profile), or a partition with larger nodes "
                         f"(set-resources: {step}: slurm_partition: in the profile)",
               "mem_limit": f"ask for at most what the partition allows a job, --set-resources "
                            f"{_memory_fix(asks, most, step)} "
                            f"on the command line (or under set-resources: in the profile), or a partition that allows "
                            f"more (set-resources: {step}: slurm_partition: in the profile)",
               "both": f"lower {step}'s threads (--set-threads) or its memory (--set-resources '{step}:mem_mb=...') "
                       f"to what one node has, or a partition with larger nodes",
               "runtime": f"--set-resources '{step}:runtime={most}' on the command line (or under set-resources: in "
                          f"the profile), or a partition that allows longer jobs (set-resources: {step}: "
                          f"slurm_partition: in the profile; sinfo -o '%P %l' lists them)"}[what]
        lines.append(f"{warn}sample '{sample}', step '{step}'{more} asks SLURM{at} for {asked}, but {offers}: {never}. "
                     f"Fix: {fix}{fewer}")
    return lines


def down_partitions(jobs, partitions):
    """A warning per partition the run's jobs go to that sinfo says is not up (down, drained, inactive):
    SLURM keeps their jobs queued (squeue's reason PartitionDown, PartitionInactive) until it is brought up,
    and the run waits with them.  ``jobs`` and ``partitions`` as :func:`unschedulable` takes them."""
    found = {}
    for step, sample, asks in jobs:
        name, part = job_partition(asks.get("slurm_partition"), partitions)
        if part is not None and not part["up"]:
            found.setdefault(name, []).append(step)
    return [f"warning: partition '{name}' is not up (sinfo -p {name} -o %a), so SLURM holds the jobs sent to it "
            f"({', '.join(sorted(set(steps)))}) in the queue until it is, and this run waits for them. "
            f"Fix: stop the run (Ctrl-C) and give another partition (slurm_partition in the profile's "
            f"default-resources / set-resources), or ask the cluster's administrators when '{name}' comes back"
            for name, steps in found.items()]


# What the run's jobs ask a SLURM cluster for, read from Snakemake's DAG when the run starts (rules/common.smk's
# onstart; dag.needrun_jobs and get_job_group are not a public API: Snakemake 9.27, pinned).
def slurm_asks(workflow):
    """(step, sample, what it asks SLURM for) of each job the run will submit: its CPUs, mem_mb, runtime
    and slurm_partition as far as they are known now (a size read from a file a job has not made yet:
    <TBD>, left out), at attempt 1 and, in asks["attempts"], at each attempt its retries allow (the
    profile's retries: the rules' sizes and a given '40*attempt' grow with it); a group job (the profiles'
    prep, post) as SLURM gets it: its steps' largest memory and CPUs, the sum of their runtimes."""
    groups = {}
    for job in workflow.dag.needrun_jobs():
        if job.is_local:           # localrules (all) run here, not as SLURM jobs
            continue
        group = workflow.dag.get_job_group(job)
        if group is not None:      # submitted as one SLURM job with its group's steps: asks as the group
            groups.setdefault(group, job)
            continue
        asks = _attempts_of(job, lambda: job.resources, lambda res: job.threads)
        if asks is not None:
            yield job.rule.name, _group_sample([job]), asks
    for group in groups:
        asks = _attempts_of(group, lambda: group.resources, lambda res: res.get("_cores"))
        if asks is not None:
            asks["steps"] = sorted({j.rule.name for j in group.jobs})
            yield group.groupid, _group_sample(group.jobs), asks


def _group_sample(jobs):
    """The slide a group job (the profiles' prep, post) or a job alone (``jobs``: it) is of: its steps' sample, or a
    simulate step's slide name where none has a sample (the group's first step may be simulate, whose wildcard is its
    name); 'all' for none."""
    for key in ("sample", "name"):
        found = sorted(str(j.wildcards_dict[key]) for j in jobs if key in j.wildcards_dict)
        if found:
            return found[0]
    return "all"


def _attempts_of(job, resources, cores):
    """:func:`_asks_of` the job (or group) at attempt 1 with, under "attempts", those of attempt 1, 2, ... up
    to the last its retries allow (Snakemake: ``restart_times`` + 1), evaluated as Snakemake does for a
    retry (setting ``job.attempt`` makes it evaluate its resources again; a group's sets its jobs'); the
    job's attempt is set back after.  None where attempt 1's cannot be read."""
    first = job.attempt
    attempts = []
    try:
        for attempt in range(1, int(job.restart_times or 0) + 2):
            job.attempt = attempt
            asks = _asks_of(resources, cores)
            if asks is None:
                break
            attempts.append(asks)
    finally:
        job.attempt = first
    if not attempts:
        return None
    return dict(attempts[0], attempts=attempts)


def _asks_of(resources, cores):
    """{mem_mb, runtime, slurm_partition, cpus} of a job's or group's ``resources()``; None where a size is
    not known yet (<TBD>; anything else is said when the job runs).  A job given ``mem_mb_per_cpu`` (in a
    profile's default-resources or set-resources) is submitted with it in place of its mem_mb (the slurm
    executor: --mem-per-cpu where it is set, else --mem), so SLURM gives it mem_mb_per_cpu x its CPUs:
    that is its mem_mb here (not known where either is not), and asks["mem_mb_per_cpu"] says so."""
    try:
        res = resources()
        asks = {key: res.get(key) for key in ("mem_mb", "runtime", "slurm_partition")}
        asks["cpus"] = res.get("cpus_per_task") or cores(res)
    except Exception:
        return None
    per_cpu = res.get("mem_mb_per_cpu")
    if per_cpu:
        per_cpu, cpus = _whole(per_cpu), _whole(asks["cpus"])
        asks["mem_mb"] = per_cpu * max(cpus, 1) if per_cpu is not None and cpus is not None else None
        asks["mem_mb_per_cpu"] = per_cpu
    return asks


def slurm_cluster(workflow):
    """What sinfo says of the cluster's partitions and nodes, and scontrol of what each partition gives one
    job of a node, under the slurm executor ({} elsewhere, or where sinfo does not answer; no partition
    limits where scontrol does not)."""
    if getattr(workflow.executor_plugin, "name", None) != "slurm":
        return {}
    text = ask_slurm()
    return slurm_partitions(text, ask_slurm(SCONTROL_PARTITIONS) if text else None)


def check_slurm(workflow):
    """(refusals, warnings) for the run's SLURM jobs: a job no node or partition can ever run
    (:func:`unschedulable`); warnings: a retry none can run of a job whose attempt 1 fits, a partition that
    is not up (:func:`down_partitions`); ([], []) off SLURM or where sinfo does not answer."""
    partitions = slurm_cluster(workflow)
    if not partitions:
        return [], []
    asks = list(slurm_asks(workflow))
    return (unschedulable(asks, partitions),
            unschedulable(asks, partitions, retries=True) + list(down_partitions(asks, partitions)))
