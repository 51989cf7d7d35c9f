"""Writing files so that a reader never sees half of one: temporary file, then a rename.

A kill or a full disk during the write leaves the previous version (or nothing) in place and
no temporary file behind, and concurrent writers never interleave their bytes.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` (bytes, or a function writing to a binary file) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, text.encode())


def torch_bytes(obj: object) -> bytes:
    """``torch.save(obj)`` into memory: writing the bytes then fails with a plain OSError on a
    full disk (torch's own file writer raises a RuntimeError there)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
