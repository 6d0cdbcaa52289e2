"""Preemption: SIGTERM, SIGUSR1 and SIGUSR2 (what SLURM and submitit send) stop the run cleanly.

A signal only sets a flag; the loop saves a checkpoint at the next step boundary and raises
Preempted. The handler that was installed before ours (submitit's requeue, on SIGUSR2) is then
given the signal, so a requeued job finds the checkpoint and resumes.
"""

import logging
import signal
import threading

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class Preempted(Exception):  # noqa: N818 -- not an error: the run was asked to stop
    def __init__(self, signum: int, step: int, previous_handler):
        self.signum, self.step, self.previous_handler = signum, step, previous_handler
        super().__init__(f"stopped by {signal.Signals(signum).name} after {step} steps; the "
                         f"checkpoint is saved, launch the same command to resume")

    def pass_on(self) -> None:
        """Give the signal to whoever handled it before us (submitit requeues the job)."""
        if callable(self.previous_handler):
            self.previous_handler(self.signum, None)


class PreemptionSignals:
    """Context manager: while active, `received` holds the first stop signal (or None)."""

    def __init__(self):
        self.received = None
        self.previous = {}

    def _receive(self, signum, frame) -> None:
        if self.received is None:
            log.warning("%s received: stopping after this step", signal.Signals(signum).name)
            self.received = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals need the main one
            self.previous = {s: signal.signal(s, self._receive) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def stop(self, step: int) -> Preempted:
        return Preempted(self.received, step, self.previous.get(self.received))
