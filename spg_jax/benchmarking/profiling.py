"""Compile, cost and time jitted functions: what the benchmark measures with.

FLOPs are the convolutions' and matmuls' of the traced program
(`spg_jax.benchmarking.flop_count`), the whole mesh's; XLA's own count for the compiled
program, one device's share, is kept beside them for reference (on GPUs it
misses the work of cuDNN and cuBLAS calls). Memory is an accelerator
allocator's peak, or on a CPU XLA's buffer assignment for one device. Times
are taken around `jax.block_until_ready` at the end of windows of several
calls, so that the host keeps dispatching ahead of the device inside a
window, as in training.
"""

from collections.abc import Callable, Sequence
import dataclasses
import statistics
import time
from typing import Any

import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp

from spg_jax.benchmarking import device_peaks
from spg_jax.benchmarking import flop_count
from spg_jax.runtime import dispatch_window
from spg_jax.runtime import sharding


@dataclasses.dataclass(frozen=True)
class Compiled:
  """A compiled function with its FLOPs and one device's memory."""

  call: Callable[..., Any]
  compile_seconds: float
  model_flops: float
  xla_flops_per_device: float
  memory_bytes_per_device: int


def compile_and_analyse(
    jitted: Any, *args: Any, model: Callable[..., Any] | None = None
) -> Compiled:
  """Lowers and compiles `jitted` for `args`; times it and counts its costs.

  `model` is the function whose FLOPs on `args` MFU counts, `jitted` itself
  by default: the same computation without rematerialisation, say, whose
  recomputation is work the step does but not work the model needs.

  The memory figure is XLA's buffer assignment: arguments, outputs and
  temporaries live at once, less the outputs that reuse donated arguments.
  """
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  seconds = time.perf_counter() - start
  cost = compiled.cost_analysis()
  if isinstance(cost, Sequence):  # older jaxlibs: one dict per program
    cost = cost[0]
  memory = compiled.memory_analysis()
  memory_bytes = (
      memory.argument_size_in_bytes
      + memory.output_size_in_bytes
      + memory.temp_size_in_bytes
      - memory.alias_size_in_bytes
  )
  return Compiled(
      call=compiled,
      compile_seconds=seconds,
      model_flops=flop_count.count_flops(model or jitted, *args),
      xla_flops_per_device=float(cost["flops"]),
      memory_bytes_per_device=memory_bytes,
  )


def median_call_seconds(
    call: Callable[[], Any], warmup_calls: int, windows: int, window_calls: int
) -> float:
  """Median over `windows` windows of one call's mean time in the window.

  Each window dispatches `window_calls` calls and waits for the last one's
  result, so dispatch overlaps with the device's work as it does in a
  training loop that reads metrics only at logging steps, and as there, at
  most `dispatch_window.STEPS_IN_FLIGHT` calls are unfinished at a time.
  """
  for _ in range(warmup_calls):
    jax.block_until_ready(call())
  means = []
  for _ in range(windows):
    start = time.perf_counter()
    _call_and_wait(call, window_calls)
    means.append((time.perf_counter() - start) / window_calls)
  return statistics.median(means)


def _call_and_wait(call: Callable[[], Any], calls: int) -> None:
  """Dispatches `calls` calls as a training loop does, then waits for them."""
  in_flight = dispatch_window.DispatchWindow()
  for _ in range(calls):
    result = call()
    in_flight.add(result)
  jax.block_until_ready(result)


def trace_calls(
    call: Callable[[], Any], directory: str, calls: int
) -> None:
  """Runs `calls` calls of `call` under `jax.profiler`'s trace.

  The trace lands in `directory` as TensorBoard's profile plugin reads it,
  with a `*.trace.json.gz` beside it for Perfetto or
  `benchmarks/trace_summary.py`. The calls are dispatched as in
  `median_call_seconds`.

  Raises:
    ValueError: `calls` is less than 1.
  """
  if calls < 1:
    raise ValueError(f"Trace at least 1 call, not {calls}.")
  with jax.profiler.trace(directory):
    _call_and_wait(call, calls)


def median_single_call_ms(
    function: Callable[..., Any], args: Sequence[Any], repeats: int
) -> float:
  """Median milliseconds of `repeats` waited-for calls of `function(*args)`.

  After one warm-up call; for a piece of a step timed on its own.
  """
  seconds = median_call_seconds(
      lambda: function(*args), warmup_calls=1, windows=repeats, window_calls=1
  )
  return seconds * 1e3


def measured_peak_flops(mesh: Mesh, dtype: jnp.dtype) -> float:
  """FLOP/s of all of `mesh`'s devices at once on large `dtype` matmuls.

  Each device multiplies its own pair of square matrices, as many at once as
  the mesh has devices; the best of a few repeats is taken.
  """
  size = device_peaks.CPU_PEAK_MATMUL_SIZE
  operands = jax.device_put(
      jnp.ones([mesh.size, size, size], dtype),
      NamedSharding(mesh, P(sharding.BATCH_AXIS)),
  )
  multiply = jax.jit(lambda a: jnp.einsum("bij,bjk->bik", a, a))
  jax.block_until_ready(multiply(operands))
  best = float("inf")
  for _ in range(device_peaks.CPU_PEAK_REPEATS):
    start = time.perf_counter()
    jax.block_until_ready(multiply(operands))
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 * mesh.size / best


def peak_flops(mesh: Mesh, dtype: jnp.dtype) -> tuple[float | None, str]:
  """Peak FLOP/s of the whole mesh in `dtype`, and where the figure is from.

  A CPU's is measured; accelerators use `device_peaks`' table, and one
  missing from it has None: a matmul small enough to time quickly would
  understate its peak, and so overstate MFU.
  """
  device = mesh.devices.flat[0]
  if device.platform == "cpu":
    size = device_peaks.CPU_PEAK_MATMUL_SIZE
    return measured_peak_flops(mesh, dtype), (
        f"measured: {size}x{size} {jnp.dtype(dtype).name} matmuls on each of"
        f" {mesh.size} device(s)"
    )
  per_device = device_peaks.table_peak_flops(
      device.device_kind, jnp.dtype(dtype).name
  )
  if per_device is None:
    return None, device_peaks.UNKNOWN_PEAK_SOURCE
  return per_device * mesh.size, "vendor peak (spg_jax.benchmarking.device_peaks)"


def peak_memory_bytes(
    devices: Sequence[jax.Device], compiled_bytes: int
) -> tuple[int, str]:
  """The largest device's peak allocation so far, and where it is from.

  Accelerators count it as they allocate (`memory_stats`); a CPU does not,
  and the compiled program's buffer assignment is reported instead.
  """
  peaks = [
      (device.memory_stats() or {}).get("peak_bytes_in_use")
      for device in devices
  ]
  if all(peak is not None for peak in peaks):
    return max(peaks), "device allocator peak (memory_stats)"
  return compiled_bytes, "XLA buffer assignment of the compiled program"
