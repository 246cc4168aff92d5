"""Tests of the mesh layout helpers."""

import jax
import numpy as np
import pytest

from spg_jax.runtime import sharding


def test_prefetch_keeps_order_and_places_batches_ahead():
  mesh = sharding.make_mesh()
  read = []

  def source():
    for index in range(5):
      read.append(index)
      yield {"image": np.full([4, 2], index, np.float32)}

  batches = sharding.prefetch_to_mesh(source(), mesh, size=2)
  first = next(batches)
  assert read == [0, 1, 2]  # the first batch, and two more already placed
  assert first["image"].sharding.spec == jax.sharding.PartitionSpec("batch")
  assert len(first["image"].addressable_shards) == 4
  rest = [int(batch["image"][0, 0]) for batch in batches]
  assert [int(first["image"][0, 0])] + rest == [0, 1, 2, 3, 4]


def test_batches_that_do_not_split_over_the_devices_are_refused():
  with pytest.raises(ValueError, match="global batch of 6 cannot be split"):
    sharding.shard_batch({"image": np.zeros([6, 2])}, sharding.make_mesh())
