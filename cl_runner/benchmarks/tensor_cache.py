"""Decoded datasets kept as one torch file, so later runs skip gzip, IDX and pickle decoding.

The key hashes every source file's resolved path, size and modification time: replacing or
touching a source file invalidates the cache. Writes go to a temporary file that is renamed into
place, so concurrent jobs of a sweep never read a half-written cache; a cache that cannot be read
counts as a miss and a cache that cannot be written is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import lazy_loader as lazy

from cl_runner.files import atomic_write, torch_bytes

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy.load("torch")

log = logging.getLogger(__name__)

CACHE_DIR = "cl_runner_cache"
_FORMAT = 1  # bump when the stored layout changes


def source_key(files: Sequence[Path], salt: str = "") -> str:
    """A digest of ``files``' paths, sizes and mtimes, plus ``salt`` (other inputs of the data)."""
    digest = hashlib.sha256(f"{_FORMAT}|{salt}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def load_tensors(path: Path, key: str) -> dict[str, Tensor] | None:
    """The tensors cached at ``path`` under ``key``, or None (absent, stale or unreadable).

    The file is memory-mapped (copy-on-write), not read: a stale cache costs no read, and a
    valid one is paged in as training touches it. Writers replace the file by renaming, so a
    mapped cache never changes underneath.
    """
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # any unreadable cache is just a miss: it is rebuilt from the sources
        log.warning("ignoring unreadable dataset cache %s (%s)", path, err)
        return None
    if not isinstance(payload, dict) or payload.get("key") != key:
        return None
    return payload["tensors"]


def save_tensors(path: Path, key: str, tensors: Mapping[str, Tensor]) -> None:
    """Store ``tensors`` at ``path`` under ``key`` (atomically; a failure only costs speed)."""
    try:
        atomic_write(path, torch_bytes({"key": key, "tensors": dict(tensors)}))
    except OSError as err:
        log.warning("could not write dataset cache %s (%s); the next run decodes again", path, err)
