"""A bound on how many steps the host dispatches ahead of the devices.

JAX dispatches computations asynchronously, so a Python loop queues steps
while the devices work through them. That is what keeps an accelerator busy,
and a few steps ahead are enough for it.

With no bound, a loop that never reads its results runs as far ahead as the
runtime allows. On a CPU split into several devices that can abort the
process. XLA:CPU admits at most 32 computations in flight per device and
blocks the next launch until one finishes, and it blocks on one of the few
threads that also run the computations. A data-parallel program with
collectives then waits in its all-reduce (the step's `lax.pmean`, the
evaluation's sums) for a device whose share has no thread left to run on. 40
seconds later XLA aborts with "Termination timeout for all reduce". A loop
that keeps fewer steps in flight than that limit never makes a launch block.
"""

import collections
from typing import Any

import jax

# Steps in flight per loop: a step is a computation or two, so well under
# XLA:CPU's 32 per device, and ahead enough for any device.
STEPS_IN_FLIGHT = 8


class DispatchWindow:
  """Keeps at most `size` dispatched steps unfinished.

  Call `add` with each step's outputs just after dispatching it. Once more
  than `size` steps are unfinished, it waits for the oldest, which is long
  done on a device kept busy, so the devices never wait on the host.
  """

  def __init__(self, size: int = STEPS_IN_FLIGHT):
    if size < 1:
      raise ValueError(f"A dispatch window holds >= 1 step, not {size}.")
    self._size = size
    self._pending: collections.deque[Any] = collections.deque()

  def add(self, outputs: Any) -> Any | None:
    """Records a dispatched step by its outputs, a pytree of arrays.

    The outputs must stay alive (not donated to a later step) while they are
    among the last `size` steps'.

    Returns:
      The outputs of the oldest step if it had to wait for it, now finished
      and out of the window (reading them costs no further wait); else None.
    """
    self._pending.append(outputs)
    if len(self._pending) <= self._size:
      return None
    finished = self._pending.popleft()
    jax.block_until_ready(finished)
    return finished

  def drain(self) -> list[Any]:
    """Waits for every step in the window; returns their outputs, oldest first.

    The window is empty afterwards.
    """
    finished = list(self._pending)
    self._pending.clear()
    return jax.block_until_ready(finished)
