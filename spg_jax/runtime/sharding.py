"""The device mesh and how state and batches are laid out on it.

One mesh axis, 'batch', spans every device of every process: the state is
replicated over it, batches are split along it.
"""

import collections
from collections.abc import Iterator, Mapping
from typing import Any

import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

BATCH_AXIS = "batch"


def make_mesh(devices: list[jax.Device] | None = None) -> Mesh:
  """A one-axis mesh over `devices` (all devices by default)."""
  return Mesh(np.asarray(devices or jax.devices()), (BATCH_AXIS,))


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places a pytree on every device of `mesh`, whole."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(
    batch: Mapping[str, np.ndarray], mesh: Mesh
) -> dict[str, jax.Array]:
  """Assembles each process's share of a batch into global arrays.

  Raises:
    ValueError: the global batch does not split evenly over the devices.
  """
  sharding = NamedSharding(mesh, P(BATCH_AXIS))
  arrays = {}
  for key, value in batch.items():
    global_size = len(value) * jax.process_count()
    if global_size % mesh.size:
      raise ValueError(
          f"A global batch of {global_size} cannot be split evenly over"
          f" {mesh.size} devices; choose a batch size divisible by"
          f" {mesh.size}."
      )
    arrays[key] = jax.make_array_from_process_local_data(sharding, value)
  return arrays


def prefetch_to_mesh(
    batches: Iterator[Mapping[str, np.ndarray]], mesh: Mesh, size: int
) -> Iterator[dict[str, jax.Array]]:
  """Yields `batches` already on the mesh, placing up to `size` more ahead.

  Transfers are asynchronous, so the next batches travel to the devices
  while the current step computes instead of after it.
  """
  queue = collections.deque()
  for batch in batches:
    queue.append(shard_batch(batch, mesh))
    if len(queue) > size:
      yield queue.popleft()
  while queue:
    yield queue.popleft()
