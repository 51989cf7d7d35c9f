"""``OnlineNaive``: fine-tuning on an online stream, ``train_passes`` passes over each chunk.

Avalanche 0.6 keeps it (deprecated) as a ``SupervisedTemplate`` with
``train_epochs=train_passes``; any strategy trained on a stream made by
``split_online_stream`` is an online strategy. Here it is a real class (Avalanche's is a
deprecation wrapper function, so ``isinstance`` and subclassing fail there). With ``cl-run``,
``protocol=online strategy=naive`` is the same method (``protocol.train_passes``).
"""

from __future__ import annotations

from typing import Any

from cl_runner.checks import POSITIVE_INT
from cl_runner.training.strategy import SupervisedTemplate, default_evaluator


class OnlineNaive(SupervisedTemplate):
    """Naive fine-tuning for online streams (Avalanche's name and arguments)."""

    short_name = "online_naive"

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        criterion: Any = None,
        train_passes: int = 1,
        train_mb_size: int = 1,
        eval_mb_size: int | None = None,
        device: Any = None,
        plugins: Any = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        peval_mode: str = "epoch",
    ) -> None:
        POSITIVE_INT("train_passes", train_passes)
        super().__init__(model, optimizer, criterion, train_mb_size, train_passes, eval_mb_size,
                         device, plugins, evaluator, eval_every, peval_mode)
        self.train_passes = train_passes

    @classmethod
    def check_args(cls, train_passes: Any = 1, **args: Any) -> None:
        POSITIVE_INT("train_passes", train_passes)
        super().check_args(**args)
