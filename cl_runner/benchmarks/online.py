"""The online protocol's stream: each experience cut into small mini-experiences (chunks).

``split_online_stream`` follows Avalanche 0.6 (``avalanche.benchmarks.scenarios.online``):
every origin experience is permuted with a private ``torch.Generator`` seeded by ``seed``
(the same seed for every origin experience; ``seed=None`` draws one from Python's ``random``
when the stream first reaches that experience) and cut into consecutive chunks of
``experience_size`` samples; the last chunk is short, or dropped with ``drop_last``. Each chunk
is an ``OnlineCLExperience`` with a *global* ``current_experience`` index.

A chunk is a view: its dataset indexes the origin experience's storage through one slice of a
permutation computed once per origin experience, so building a chunk costs a few Python
operations and no tensor copy, and a buffer that keeps chunk samples keeps storage indices.

Differences from Avalanche (on purpose): the stream has ``len()`` and can be indexed and
sliced (a resumed run starts at chunk ``k``); ``is_last_subexp`` is set on the last chunk of
every origin experience (Avalanche sets it only on a short last chunk); a chunk also offers
``task_label(s)`` (its origin experience's) and ``classes_in_this_experience`` (computed
from the chunk's own labels, so it reveals no boundary).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.checks import BOOL, POSITIVE_INT

if TYPE_CHECKING:
    from cl_runner.benchmarks.base import Experience
    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")

SplitStrategy = Callable[[Any, int], Iterable["OnlineCLExperience"]]


@dataclass(eq=False, kw_only=True)
class OnlineCLExperience:
    """One mini-experience of an online stream (Avalanche's fields and names).

    ``current_experience`` (global position in the online stream) and ``origin_stream`` (the
    online stream's name) are set by the stream. With ``access_task_boundaries`` a strategy
    may use ``origin_experience`` / ``is_first_subexp`` / ``is_last_subexp`` to know where the
    original experiences end; the fields exist either way (as in Avalanche, where they are
    readable in practice).
    """

    dataset: ClassificationDataset
    origin_experience: Experience
    is_first_subexp: bool = False
    is_last_subexp: bool = False
    sub_stream_length: int | None = None
    access_task_boundaries: bool = False
    current_experience: int = 0
    origin_stream: str = "train_online"
    _classes: list[int] | None = field(default=None, init=False, repr=False)

    @property
    def subexp_size(self) -> int:
        """Samples in this chunk."""
        return len(self.dataset)

    @property
    def task_label(self) -> int:
        return self.origin_experience.task_label

    @property
    def task_labels(self) -> list[int]:
        return [self.task_label]

    @property
    def classes_in_this_experience(self) -> list[int]:
        """The classes of this chunk's samples (computed once, on first use)."""
        if self._classes is None:
            self._classes = sorted(self.dataset.targets.unique().tolist())
        return self._classes

    def __repr__(self) -> str:
        return (f"OnlineCLExperience(current_experience={self.current_experience}, origin="
                f"{self.origin_experience.current_experience}, size={self.subexp_size}, "
                f"first={self.is_first_subexp}, last={self.is_last_subexp})")


def check_split_args(
    experience_size: Any = 10, shuffle: Any = True, drop_last: Any = False,
    access_task_boundaries: Any = False, seed: Any = None,
) -> None:
    """Raise ``SettingError`` for a split setting ``split_online_stream`` refuses."""
    POSITIVE_INT("experience_size", experience_size)
    BOOL("shuffle", shuffle)
    BOOL("drop_last", drop_last)
    BOOL("access_task_boundaries", access_task_boundaries)
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool)
                                 and 0 <= seed < 2**63):
        from cl_runner.checks import SettingError

        raise SettingError("seed", seed, "null or an integer from 0 to 2**63-1")


class OnlineStream(Sequence):
    """The chunks of an online stream, made on demand (a cheap view each).

    Iterating twice gives the same chunks. ``len()``, indexing and slicing (a list of
    chunks) are supported; ``chunk_sizes()`` and ``origin_of(i)`` answer without building
    chunks.
    """

    def __init__(
        self,
        original_stream: Sequence[Experience],
        experience_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        experience_split_strategy: SplitStrategy | None = None,
        access_task_boundaries: bool = False,
        seed: int | None = None,
    ) -> None:
        check_split_args(experience_size, shuffle, drop_last, access_task_boundaries, seed)
        self.original_stream = list(original_stream)
        self.experience_size = experience_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.split_strategy = experience_split_strategy
        self.access_task_boundaries = access_task_boundaries
        self.seed = seed
        origin_name = getattr(original_stream, "name", None) or "train"
        self.name = f"{getattr(origin_name, 'name', origin_name)}_online"
        self._rows: dict[int, Any] = {}  # origin index -> (storage view, permuted rows)
        self._custom: dict[int, list[OnlineCLExperience]] = {}
        counts = [self._n_chunks(k) for k in range(len(self.original_stream))]
        self._starts = [0]
        for n in counts:
            self._starts.append(self._starts[-1] + n)

    # -- sizes (no chunk built) ------------------------------------------------------------
    def _n_chunks(self, k: int) -> int:
        if self.split_strategy is not None:
            return len(self._custom_chunks(k))
        n, s = len(self.original_stream[k].dataset), self.experience_size
        return n // s if self.drop_last else -(-n // s)

    def __len__(self) -> int:
        return self._starts[-1]

    def origin_of(self, i: int) -> int:
        """Index of the origin experience chunk ``i`` comes from."""
        return bisect.bisect_right(self._starts, i) - 1

    def chunk_range(self, k: int) -> range:
        """Positions of the chunks of origin experience ``k``."""
        return range(self._starts[k], self._starts[k + 1])

    def chunk_sizes(self) -> list[int]:
        """Samples of every chunk, in stream order."""
        if self.split_strategy is not None:
            return [c.subexp_size for k in range(len(self.original_stream))
                    for c in self._custom_chunks(k)]
        sizes = []
        for k, exp in enumerate(self.original_stream):
            n, s = len(exp.dataset), self.experience_size
            full, rest = divmod(n, s)
            sizes += [s] * full + ([rest] if rest and not self.drop_last else [])
            assert len(sizes) == self._starts[k + 1]
        return sizes

    # -- chunks ----------------------------------------------------------------------------
    def _permuted_rows(self, k: int) -> tuple[ClassificationDataset, Any]:
        """Origin ``k``'s storage view and its rows in split order (computed once)."""
        cached = self._rows.get(k)
        if cached is None:
            data = self.original_stream[k].dataset
            n = len(data)
            if self.shuffle:
                seed = self.seed if self.seed is not None else random.randint(0, 2**32 - 1)
                order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
            else:
                order = torch.arange(n)
            rows = data.storage_indices[order.to(data.device)]
            cached = self._rows[k] = (data.storage_view(), rows)
        return cached

    def _custom_chunks(self, k: int) -> list[OnlineCLExperience]:
        chunks = self._custom.get(k)
        if chunks is None:
            origin = self.original_stream[k]
            chunks = self._custom[k] = list(self.split_strategy(origin, self.experience_size))
        return chunks

    def _make(self, i: int) -> OnlineCLExperience:
        k = self.origin_of(i)
        first, last = self._starts[k], self._starts[k + 1] - 1
        if self.split_strategy is not None:
            chunk = self._custom_chunks(k)[i - first]
        else:
            root, rows = self._permuted_rows(k)
            j = (i - first) * self.experience_size
            chunk = OnlineCLExperience(
                dataset=root.subset(rows[j : j + self.experience_size]),
                origin_experience=self.original_stream[k],
                is_first_subexp=i == first, is_last_subexp=i == last,
                sub_stream_length=last - first + 1,
                access_task_boundaries=self.access_task_boundaries,
            )
        chunk.current_experience = i
        chunk.origin_stream = self.name
        return chunk

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._make(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"chunk {i} of an online stream of {len(self)}")
        return self._make(i)

    def __iter__(self) -> Iterator[OnlineCLExperience]:
        return (self._make(i) for i in range(len(self)))

    def __repr__(self) -> str:
        return (f"OnlineStream({self.name!r}, {len(self)} chunks of {self.experience_size} from "
                f"{len(self.original_stream)} experiences)")


def split_online_stream(
    original_stream: Sequence[Experience],
    experience_size: int,
    shuffle: bool = True,
    drop_last: bool = False,
    experience_split_strategy: SplitStrategy | None = None,
    access_task_boundaries: bool = False,
    seed: int | None = None,
) -> OnlineStream:
    """Cut every experience of ``original_stream`` into mini-experiences (Avalanche's name,
    arguments and defaults).

    ``experience_split_strategy(experience, experience_size)``, if given, returns the chunks
    of one origin experience (``OnlineCLExperience`` objects) and ``shuffle``, ``drop_last``
    and ``seed`` are ignored, as in Avalanche.
    """
    return OnlineStream(original_stream, experience_size, shuffle, drop_last,
                        experience_split_strategy, access_task_boundaries, seed)


__all__ = ["OnlineCLExperience", "OnlineStream", "split_online_stream"]
