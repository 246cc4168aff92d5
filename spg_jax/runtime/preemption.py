"""Stopping cleanly when the machine asks: SIGTERM, as TPU VMs and batch
schedulers send before they take a machine back.

`StopRequest` turns SIGTERM into a flag the training loop reads after each
step (a Python bool: no device sync). The loop then saves the state after
that step, waits for the save to land and raises `Preempted`; `main` exits
0, and the same command run again resumes from that checkpoint exactly.
"""

import signal
import threading
import types


class Preempted(Exception):  # pylint: disable=g-bad-exception-name
  """The run stopped on SIGTERM after saving step `step`."""

  def __init__(self, step: int):
    super().__init__(
        f"Stopped on SIGTERM after step {step}, saved. Run the same command"
        " again to continue from there."
    )
    self.step = step


class StopRequest:
  """A context that records SIGTERM instead of dying of it.

  Outside the main thread (a notebook's worker, say), where Python cannot
  install signal handlers, it never fires and SIGTERM keeps its default.
  """

  def __init__(self):
    self.requested = False
    self._previous = None

  def _handle(self, signum: int, frame: types.FrameType | None) -> None:
    del signum, frame
    self.requested = True

  def __enter__(self) -> "StopRequest":
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
