"""Hub helpers: putting model folders where `from_pretrained("org/name")` finds them offline."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_model_folder(folder: str | os.PathLike, repo_id: str, cache_dir: str | os.PathLike | None = None,
                       commit: str = "0" * 40, ref: str = "main") -> Path:
    """Copy a model folder into a Hugging Face cache in the layout `hf download` leaves.

    For air-gapped machines: afterwards ``MCJAModel.from_pretrained(repo_id)`` works with
    ``HF_HUB_OFFLINE=1``. Blobs are content-addressed, the snapshot holds relative symlinks, and
    ``refs/<ref>`` names the commit. Returns the snapshot folder.
    """
    from huggingface_hub import constants

    if len(commit) != 40 or any(ch not in "0123456789abcdef" for ch in commit):
        raise ValueError(f"commit must be 40 lowercase hex digits, got {commit!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    repo = Path(cache_dir or constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / f.name
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..") / ".." / "blobs" / blob.name)
    (repo / "refs" / ref).write_text(commit)
    return snapshot
