"""Training protocols (the ``protocol`` config group): how a run walks the benchmark's stream.

- ``BatchProtocol`` (``protocol=batch``, the default): one experience at a time, each trained
  for ``strategy.train_epochs`` epochs, evaluated on the whole test stream after it.
- ``OnlineProtocol`` (``protocol=online``): every training experience is cut into chunks of
  ``experience_size`` samples (``split_online_stream``); each chunk is an experience for the
  strategy (its memory is updated after every chunk), trained ``train_passes`` times.

Both can evaluate *anytime*: every ``eval_every`` training samples (see
``cl_runner.evaluation.anytime``), on the whole test stream or on a fixed, seeded subsample
of ``eval_subsample`` test samples. The classes are torch-free: ``cl-run`` validates them
before any data is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from cl_runner.benchmarks.online import check_split_args
from cl_runner.checks import POSITIVE_INT, Rule, SettingError, is_int

EVAL_EVERY = Rule(lambda v: is_int(v) and (v == -1 or v > 0),
                  "-1 (evaluate at experience ends only) or a positive number of training "
                  "samples")
OPTIONAL_COUNT = Rule(lambda v: v is None or (is_int(v) and v > 0), "null or a positive integer")


class BatchProtocol:
    """Experience by experience, with optional anytime evaluation.

    ``eval_every``: evaluate every that many training samples (current-experience samples
    processed by training steps; replayed memory samples are not counted, repeated epochs
    are); -1: only after each experience. ``eval_subsample``: evaluate those points on a fixed
    random subset of that many test samples (spread over the test experiences in proportion
    to their sizes; drawn once from ``seed``), null for the whole test stream. Experience ends
    are always evaluated on the whole test stream.
    """

    name_part: ClassVar[str] = ""  # word of a run name
    online: ClassVar[bool] = False
    num_threads: int | None = None  # torch's default

    def __init__(self, eval_every: int = -1, eval_subsample: int | None = None) -> None:
        BatchProtocol.check_args(eval_every=eval_every, eval_subsample=eval_subsample)
        self.eval_every = eval_every
        self.eval_subsample = eval_subsample

    @classmethod
    def check_args(cls, eval_every: Any = -1, eval_subsample: Any = None, **_: Any) -> None:
        EVAL_EVERY("eval_every", eval_every)
        OPTIONAL_COUNT("eval_subsample", eval_subsample)

    @classmethod
    def check_run(cls, args: Mapping[str, Any], strategy_args: Mapping[str, Any],
                  buffer: type | None, buffer_args: Mapping[str, Any]) -> None:
        """Raise ``SettingError`` for a setting of another group this protocol cannot run."""

    @property
    def anytime(self) -> bool:
        """Whether the run evaluates between experience ends."""
        return self.eval_every > 0


class OnlineProtocol(BatchProtocol):
    """Online continual learning: a stream of small mini-experiences, each seen
    ``train_passes`` times, memory updated after each (Avalanche's ``split_online_stream``
    semantics: shuffled within each experience, ``drop_last``, ``access_task_boundaries``).

    ``checkpoint_every``: save a resume point after the chunk that reaches every that many
    samples of the stream; null: after each original experience. ``strategy.train_mb_size``
    follows ``experience_size`` unless set (one step per chunk), ``strategy.train_epochs``
    is ``train_passes``. ``num_threads``: torch's intra-op threads for the run (null: torch's
    default, one per core): a step of a few samples is too small to share, and on a busy
    machine threads that wait for each other make steps, and even evaluation batches, many
    times slower (measured: README notes).
    """

    name_part = "online"
    online = True

    def __init__(
        self,
        experience_size: int = 10,
        shuffle: bool = True,
        drop_last: bool = False,
        access_task_boundaries: bool = False,
        train_passes: int = 1,
        eval_every: int = -1,
        eval_subsample: int | None = None,
        checkpoint_every: int | None = None,
        num_threads: int | None = 1,
    ) -> None:
        OnlineProtocol.check_args(
            experience_size=experience_size, shuffle=shuffle, drop_last=drop_last,
            access_task_boundaries=access_task_boundaries, train_passes=train_passes,
            eval_every=eval_every, eval_subsample=eval_subsample,
            checkpoint_every=checkpoint_every, num_threads=num_threads)
        super().__init__(eval_every, eval_subsample)
        self.experience_size = experience_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.access_task_boundaries = access_task_boundaries
        self.train_passes = train_passes
        self.checkpoint_every = checkpoint_every
        self.num_threads = num_threads

    @classmethod
    def check_args(
        cls, experience_size: Any = 10, shuffle: Any = True, drop_last: Any = False,
        access_task_boundaries: Any = False, train_passes: Any = 1, eval_every: Any = -1,
        eval_subsample: Any = None, checkpoint_every: Any = None, num_threads: Any = 1,
        **_: Any,
    ) -> None:
        check_split_args(experience_size, shuffle, drop_last, access_task_boundaries)
        POSITIVE_INT("train_passes", train_passes)
        super().check_args(eval_every=eval_every, eval_subsample=eval_subsample)
        OPTIONAL_COUNT("checkpoint_every", checkpoint_every)
        OPTIONAL_COUNT("num_threads", num_threads)

    @classmethod
    def check_run(cls, args: Mapping[str, Any], strategy_args: Mapping[str, Any],
                  buffer: type | None, buffer_args: Mapping[str, Any]) -> None:
        passes = args.get("train_passes", 1)
        epochs = strategy_args.get("train_epochs", passes)
        if epochs != passes:
            raise SettingError(
                "strategy.train_epochs", epochs,
                f"{passes} with protocol=online: it trains protocol.train_passes={passes} "
                "passes over each chunk (set protocol.train_passes instead)")
        if buffer is not None and buffer.group_kind(buffer_args) == "experience":
            raise SettingError(
                "buffer", getattr(buffer, "short_name", buffer.__name__),
                "a buffer not grouped by experience with protocol=online (every chunk is an "
                "experience: once there are more chunks than max_size, new data never "
                "enters); use buffer=reservoir or buffer=class_balanced")
