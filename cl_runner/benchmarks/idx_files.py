"""Checks of IDX (MNIST-format) files, so a bad file is reported as one reason, not a traceback.

torchvision's IDX parser asserts on malformed input and trusts the header's sizes. These checks
run on the bytes first: magic number, dimensions, total size against the header, label range.
"""

from __future__ import annotations

import struct
from math import prod
from typing import Literal

IdxKind = Literal["images", "labels"]

# magic = 0x0000 | type 0x08 (unsigned byte) | number of dimensions
_MAGIC = {"images": 0x00000803, "labels": 0x00000801}
_NDIM = {"images": 3, "labels": 1}


class IdxFormatError(ValueError):
    """Why some bytes are not a usable IDX file (the caller adds the path)."""


def idx_kind(file_name: str) -> IdxKind:
    """'images' or 'labels', from the official file names (``train-images-idx3-ubyte``)."""
    return "images" if "-images-" in file_name else "labels"


def idx_item_count(
    data: bytes,
    kind: IdxKind,
    *,
    image_shape: tuple[int, int] = (28, 28),
    n_classes: int = 10,
) -> int:
    """Number of items in a well-formed IDX file; raises IdxFormatError naming the problem."""
    ndim = _NDIM[kind]
    header_size = 4 * (ndim + 1)
    if len(data) < header_size:
        raise IdxFormatError(f"{len(data)} bytes, too short for an IDX {kind} header")
    magic = int.from_bytes(data[:4], "big")
    if magic != _MAGIC[kind]:
        raise IdxFormatError(
            f"IDX magic number 0x{magic:08x}, expected 0x{_MAGIC[kind]:08x} for {kind}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    if kind == "images" and tuple(dims[1:]) != image_shape:
        raise IdxFormatError(
            f"images are {dims[1]}x{dims[2]}, expected {image_shape[0]}x{image_shape[1]}"
        )
    expected = header_size + prod(dims)
    if len(data) != expected:
        raise IdxFormatError(f"{len(data)} bytes, but its header declares {expected}")
    if kind == "labels" and dims[0] > 0:
        top = max(data[header_size:])
        if top >= n_classes:
            raise IdxFormatError(f"label {top} is outside 0..{n_classes - 1}")
    return dims[0]
