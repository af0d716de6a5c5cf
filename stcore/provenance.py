"""What a result was made from: seed, package versions, and hashes of the config and input.

``record`` gives flat ``{name: value}`` pairs that the evaluate step writes as columns of
``metrics.tsv`` (and so of ``results/benchmark.tsv``), so every row of a benchmark table can
be traced to the code, the settings and the slide that made it.
"""
from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "versions", "config_digest", "input_digest", "record"]

# Packages whose versions change the numbers.
PACKAGES = ("stcore", "torch", "scanpy", "snakemake")

# The files of a Space Ranger folder that a slide is read from.
_VISIUM_FILES = ("filtered_feature_bc_matrix.h5", "spatial/tissue_positions.csv",
                 "spatial/tissue_positions_list.csv", "spatial/scalefactors_json.json")


def versions(packages=PACKAGES) -> dict[str, str]:
    """Installed version of each package ('absent' when it is not installed)."""
    out = {}
    for name in packages:
        if name == "stcore":
            from . import __version__
            out[name] = __version__
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def config_digest(config: dict) -> str:
    """sha256 of the config as canonical JSON (sorted keys), so equal settings give equal hashes."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _hash_file(h, path: Path) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)


def input_digest(path: str | os.PathLike) -> str:
    """sha256 of a slide's input: the file itself, or for a Space Ranger folder the matrix
    and the spatial files (name and content of each, in a fixed order)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        for rel in _VISIUM_FILES:
            f = path / rel
            if f.is_file():
                h.update(rel.encode() + b"\0")
                _hash_file(h, f)
    else:
        _hash_file(h, path)
    return h.hexdigest()


def record(*, seed: int, config: dict, input_sha256: str = "") -> dict[str, object]:
    """Flat provenance columns: seed, ``<package>_version`` for each of :data:`PACKAGES`,
    ``config_sha256`` and ``input_sha256``."""
    row: dict[str, object] = {"seed": int(seed)}
    row |= {f"{k}_version": v for k, v in versions().items()}
    row["config_sha256"] = config_digest(config)
    row["input_sha256"] = input_sha256
    return row
