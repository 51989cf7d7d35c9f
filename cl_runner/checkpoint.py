"""Resume points: after each experience, everything needed to continue bit-for-bit.

A checkpoint holds the strategy's declared state (model, optimizer, clock, plugins and their
buffers; see ``SupervisedTemplate.state_dict``), every RNG state, the accuracy rows and
buffer composition so far, and how many ``metrics.jsonl`` lines it covers. It contains only
tensors and plain values, so it loads with ``torch.load(..., weights_only=True)``; buffers
refer to the benchmark's data by name and index, and the rebuilt benchmark (same config,
same seed) provides the data again.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lazy_loader as lazy

from cl_runner.errors import ResumeError
from cl_runner.files import atomic_write, torch_bytes
from cl_runner.recording import writing

torch = lazy.load("torch")
np = lazy.load("numpy")

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 2


def rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), numpy and python RNG states as plain values and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: str | Path, state: dict[str, Any]) -> Path:
    """Write atomically: a kill or a full disk during the write leaves the previous
    checkpoint intact."""
    path = Path(folder) / CHECKPOINT_FILE
    data = torch_bytes({"format": FORMAT, **state})
    with writing(path):
        return atomic_write(path, data)


def load_checkpoint(folder: str | Path) -> dict[str, Any]:
    """The checkpoint of ``folder``; one-line ``ResumeError`` if it is unreadable or older."""
    path = Path(folder) / CHECKPOINT_FILE
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # truncated, empty, not a torch file, or unpicklable content
        raise ResumeError(f"{path} cannot be read ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:120]}): start the run again without "
                          "resume") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format", state.get("version")) if isinstance(state, dict) else None
        raise ResumeError(f"{path} has checkpoint format {found}, this cl_runner reads format "
                          f"{FORMAT}: start the run again without resume")
    return state
