"""The settings each job ran with, kept beside the results so that a changed setting reruns the
job even where Snakemake has no record of the earlier run (a results/ folder copied from another
machine or folder with its modification times, cp -a, rsync -a, tar; a .snakemake folder deleted).

Snakemake reruns a job whose params changed only from its own records in .snakemake/; without
them, results made with other settings were kept as this config's ("Nothing to be done").  A
stamp, results/records/settings/<stage>/<job>.json, is an input of the job: it holds the sha256 of
the job's settings and is rewritten, with a fresh modification time, only when they changed.  A
stamp written for the first time gets the oldest modification time (1970), so it never reruns a
job by itself (Snakemake's records decide, as before)."""
from __future__ import annotations

import hashlib
import json
import os

SETTINGS_STAMP = "results/records/settings/{stage}/{job}.json"


def settings_digest(settings) -> str:
    """sha256 of ``settings`` as canonical JSON (sorted keys)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def settings_stamp(stage: str, job: str, settings, root: str = "") -> str:
    """Keep the stamp of ``stage``'s job ``job`` (a path under ``root``) holding ``settings``'
    digest; return its path (relative, as the rules name inputs).  Rewritten with a fresh
    modification time only when the digest changed; a new stamp is dated 1970."""
    path = SETTINGS_STAMP.format(stage=stage, job=job)
    full = os.path.join(root, path)
    digest = settings_digest(settings)
    try:
        with open(full) as fh:
            old = json.load(fh).get("settings_sha256")
    except (OSError, ValueError, AttributeError):
        old = None
    if old == digest:
        return path
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = f"{full}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump({"settings_sha256": digest, "settings": settings}, fh, indent=1, sort_keys=True, default=str)
    if old is None and not os.path.exists(full):
        os.utime(tmp, (0, 0))           # first stamp: no rerun of its own
    os.replace(tmp, full)
    return path
