"""Graceful stops: Ctrl-C (SIGINT), SIGTERM and SIGUSR2 end a search or training run at a step boundary.

A stop request on disk (``RUN/.stop-request``, what ``compare --cancel`` writes into every unfinished run of a
comparison, on any host sharing the folder) is read as SIGTERM is, within a second of being written.

SIGUSR2 is Slurm's warning before a time limit or a preemption (``--signal=USR2@SECONDS``, what submitit asks
for); a search run as a Slurm job gets it directly too, since Slurm signals every process of the job step.

A long run installs :class:`StopSignals` around its loop. The first signal only sets a flag; the
loop finishes the step it is in, writes a checkpoint and raises :class:`Interrupted`, whose message
names the resume command. A second signal while the checkpoint is written is ignored, so the
checkpoint is never abandoned half-way (SIGKILL still kills at once; the atomic write in
:mod:`nasbench_pc.runtime.files` keeps the previous checkpoint intact then).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType

from nasbench_pc.errors import NasbenchError

_SIGNALS = (signal.SIGINT, signal.SIGTERM, *([signal.SIGUSR2] if hasattr(signal, "SIGUSR2") else []))


class Interrupted(NasbenchError):
    """A run stopped by SIGINT/SIGTERM after saving its checkpoint; exit status 128 + signal number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopSignals:
    """Context manager: while active, SIGINT/SIGTERM/SIGUSR2 set :attr:`signum` instead of raising.

    Outside the main thread (where Python cannot install handlers) it does nothing, and the run
    stops the usual way.
    """

    def __init__(self, request_file: Path | None = None) -> None:
        self.signum: int | None = None
        self.request_file, self.by_request = request_file, False
        self._looked = 0.0
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        if self.signum is None and self.request_file is not None and time.monotonic() - self._looked >= 1.0:
            self._looked = time.monotonic()  # at most one stat a second, however short the steps
            if self.request_file.exists():
                self.signum, self.by_request = signal.SIGTERM, True
        return self.signum is not None

    @property
    def name(self) -> str:
        if self.by_request:
            return f"A stop request ({self.request_file})"
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def interrupted(self, what: str, where: str, resume: str) -> Interrupted:
        """The error to raise once the checkpoint of the current step is on disk."""
        return Interrupted(
            f"{self.name} received: the {what} stopped after finishing its current step and saved a checkpoint "
            f"in {where}. Nothing finished is lost; continue it with `{resume}`.",
            self.signum or signal.SIGINT,
        )
