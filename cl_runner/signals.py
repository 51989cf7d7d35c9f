"""SIGINT and SIGTERM end a run cleanly, wherever they land.

Inside ``InterruptGuard``, either signal raises ``RunInterrupted`` (a ``KeyboardInterrupt``,
so ``except Exception`` never swallows it) at the next Python instruction, except inside a
``protected()`` section (a checkpoint or metrics write, the end-of-run bookkeeping): there
the signal is remembered and raised when the section ends, so no file is left half-written
and the run is always marked KILLED. MLflow calls happen in the background writer, which
never receives these signals.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """A signal stopped the run; ``cl-run`` exits with ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class InterruptGuard:
    """Signal handlers for the duration of a run (main thread only; elsewhere a no-op)."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._depth:
            self._pending = self._pending or signum
            return
        raise RunInterrupted(signum)

    @contextlib.contextmanager
    def protected(self) -> Iterator[None]:
        """Defer signals until the section ends (then raise the first one that came)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._pending is not None:
                signum, self._pending = self._pending, None
                raise RunInterrupted(signum)
