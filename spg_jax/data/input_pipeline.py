"""tf.data input pipeline: TFDS -> decode -> resize -> labels -> holes -> batches.

Batches are dicts of numpy arrays holding this process's share of the global
batch: `image` float32 [B, H, W, 3] in [-1, 1], `label` int32 [B, H, W] and
`mask` float32 [B, H, W, 1] with 1 = hole. The training code lays them out on
the device mesh.

Everything random is a pure function of the config's seed and of an example's
position in the stream: each epoch's order comes from a shuffle seeded by the
seed, the process and the epoch's number, each hole and crop from a stateless
seed made of the seed and the example's index. So the stream is the same on
every run, and a run resumed at step `s` sees exactly the batches an
uninterrupted run sees from step `s` on; it starts straight at the epoch of
step `s`, reading only that epoch's examples before it.

The iterators read a `data_source.DataSource`, the data config a run
resolves once.
"""

from collections.abc import Iterator
import math
from typing import Any

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from spg_jax.data import data_source
from spg_jax.data import labelling
from spg_jax.data import masks
from spg_jax.data import preparation

Batch = dict[str, np.ndarray]

# Salts that keep the random streams of crops, holes and epoch orders apart.
_CROP_STREAM = 1
_MASK_STREAM = 2
_SHUFFLE_STREAM = 3

# Starts the message of a failed label check, to tell it from other errors.
_LABEL_ERROR = "Label check failed: the example"


def _read_split(
    source: data_source.DataSource, split: str, per_process: bool
) -> tf.data.Dataset:
  """Reads a split in order: this process's part of it, or all of it."""
  if per_process:
    split = _process_parts(split)[jax.process_index()]
  dataset = source.builder.as_dataset(
      split=split,
      shuffle_files=False,
      # One file at a time in order; no automatic caching, since the
      # training stream caches decoded examples itself.
      read_config=tfds.ReadConfig(
          interleave_cycle_length=1, try_autocache=False
      ),
  )
  return dataset


def _map_labels(
    raw: tf.Tensor,
    lookup: np.ndarray,
    example_id: tf.Tensor,
    classes_name: str,
) -> tf.Tensor:
  """Maps raw label values to class ids; fails naming the example otherwise."""
  in_range = (raw >= 0) & (raw < len(lookup))
  class_ids = tf.gather(lookup, tf.clip_by_value(raw, 0, len(lookup) - 1))
  allowed = in_range & (class_ids != labelling.UNMAPPED)
  check = tf.debugging.Assert(
      tf.reduce_all(allowed),
      [
          _LABEL_ERROR,
          example_id,
          "holds the raw label values",
          tf.unique(tf.boolean_mask(raw, ~allowed))[0],
          "that config.data.label_map and extra_label_value map to no class"
          f" of {classes_name!r}.",
      ],
      summarize=16,
  )
  with tf.control_dependencies([check]):
    return tf.identity(class_ids)


def _decode(
    example: dict[str, tf.Tensor],
    data_config: ml_collections.ConfigDict,
    lookup: np.ndarray,
) -> dict[str, tf.Tensor]:
  """Image to uint8 [H, W, 3], labels to class ids [H, W], resized.

  'squash' resizes straight to image_size x image_size (the paper squashes
  Cityscapes' 2:1 frame); 'crop' resizes the shorter side to image_size and
  leaves the square crop to `_crop`. Images stay uint8 so that the cache of
  decoded examples takes a quarter of the memory of float32.
  """
  if data_config.id_key:
    example_id = example[data_config.id_key]
  else:
    example_id = tf.constant(f"An example of {data_config.name}")
  raw = tf.cast(example[data_config.label_key], tf.int32)
  channel = data_config.label_channel
  label = _map_labels(
      raw[..., channel : channel + 1], lookup, example_id, data_config.classes
  )
  image = example[data_config.image_key]
  size = data_config.image_size
  if data_config.resize == "squash":
    target = tf.constant([size, size])
  else:
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_min(shape)
    target = tf.cast(tf.math.ceil(shape * scale), tf.int32)
  image = tf.image.resize(image, target, method="bilinear", antialias=True)
  label = tf.image.resize(label, target, method="nearest")
  return {
      "image": tf.saturate_cast(tf.round(image), tf.uint8),
      "label": label[..., 0],
  }


def _crop(
    example: dict[str, tf.Tensor], size: int, seed: tf.Tensor | None
) -> dict[str, tf.Tensor]:
  """Crops a size x size square: random from `seed`, or central if None."""
  shape = tf.shape(example["image"])
  max_offsets = shape[:2] - size
  if seed is None:
    offsets = max_offsets // 2
  else:
    offsets = tf.random.stateless_uniform(
        [2], seed, minval=0, maxval=tf.int32.max, dtype=tf.int32
    ) % (max_offsets + 1)
  return {
      "image": example["image"][
          offsets[0] : offsets[0] + size, offsets[1] : offsets[1] + size
      ],
      "label": example["label"][
          offsets[0] : offsets[0] + size, offsets[1] : offsets[1] + size
      ],
  }


def _make_finish_fn(
    config: ml_collections.ConfigDict,
    data_config: ml_collections.FrozenConfigDict,
    seed: int,
    random_crop: bool,
):
  """Returns a map fn (global index, decoded example) -> model example."""
  size = data_config.image_size
  mask_fn = masks.make_mask_fn(config.masks, size, size)

  def finish(index: tf.Tensor, example: dict[str, tf.Tensor]):
    index = tf.cast(index, tf.int64)
    if data_config.resize == "crop":
      crop_seed = tf.stack([tf.constant(seed, tf.int64) + _CROP_STREAM, index])
      example = _crop(example, size, crop_seed if random_crop else None)
    mask_seed = tf.stack([tf.constant(seed, tf.int64) + _MASK_STREAM, index])
    image = tf.cast(example["image"], tf.float32) / 127.5 - 1.0
    image = tf.ensure_shape(image, [size, size, 3])
    label = tf.ensure_shape(example["label"], [size, size])
    return {"image": image, "label": label, "mask": mask_fn(mask_seed)}

  return finish


def _with_clear_errors(batches: Iterator[Batch]) -> Iterator[Batch]:
  """Re-raises a failed label check as a DataError naming the example."""
  try:
    yield from batches
  except tf.errors.InvalidArgumentError as error:
    if _LABEL_ERROR not in error.message:
      raise
    # tf.debugging.Assert prints each of its items in brackets.
    message = error.message[error.message.index(_LABEL_ERROR) :]
    message = message.splitlines()[0].replace("] [", " ").rstrip("]")
    raise preparation.DataError(message) from None


def _process_batch_size(global_batch_size: int) -> int:
  if global_batch_size % jax.process_count():
    raise ValueError(
        f"The global batch size {global_batch_size} must be divisible by the"
        f" number of processes ({jax.process_count()})."
    )
  return global_batch_size // jax.process_count()


def _process_parts(split: str) -> list[Any]:
  """The split cut into `jax.process_count()` contiguous parts, in order;
  process p reads part p."""
  return tfds.even_splits(
      split, n=jax.process_count(), drop_remainder=False
  )


def _part_start(source: data_source.DataSource, split: str) -> int:
  """The position in `split` of this process's first example."""
  parts = _process_parts(split)[: jax.process_index()]
  return sum(source.builder.info.splits[part].num_examples for part in parts)


def _epoch_seed(seed: int, epoch: tf.Tensor) -> tf.Tensor:
  """The shuffle seed of `epoch`, the same on every process: a hash of the
  seed and the epoch."""
  key = tf.stack([tf.constant(seed + _SHUFFLE_STREAM, tf.int64), epoch])
  return tf.random.stateless_uniform(
      [], key, minval=None, maxval=None, dtype=tf.int64
  )


def create_train_iterator(
    config: ml_collections.ConfigDict,
    source: data_source.DataSource,
    start_step: int = 0,
) -> Iterator[Batch]:
  """Yields this process's training batches from step `start_step` on.

  The decoded split is cached in memory (`config.data.cache`) and read
  forever, epoch after epoch, each epoch in its own seeded order. The
  stream starts at the epoch that holds step `start_step` and skips only
  that epoch's examples before it, so resuming costs at most one epoch's
  reading, whatever the step. Each example keeps its index from the start
  of training, which seeds its hole and crop.

  Every process walks the same global order and keeps its own share of
  each global batch (process p the p-th of `jax.process_count()` equal
  parts), so the global batches, and the training, are the same on any
  number of processes. An example outside this process's share is only
  read, never decoded (unless the split is cached) nor given a hole.

  Args:
    config: the run's config; its data values are read from `source`.
    source: `config.data`, resolved.
    start_step: the first step whose batch is yielded.
  """
  data_config = source.config
  global_batch_size = config.batch_size
  batch_size = _process_batch_size(global_batch_size)
  process = jax.process_index()
  dataset = _read_split(source, data_config.train_split, per_process=False)
  # TFDS knows a split's size (and refuses an empty one).
  epoch_size = int(dataset.cardinality())

  def decode(example):
    return _decode(example, data_config, source.label_lookup)

  if data_config.cache:
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE).cache()

  def epoch(number: tf.Tensor) -> tf.data.Dataset:
    """Epoch `number` in its order, each example with its stream index."""
    order = dataset.shuffle(
        data_config.shuffle_buffer_size, seed=_epoch_seed(config.seed, number)
    )
    return order.enumerate(start=number * epoch_size)

  start_epoch, skipped = divmod(start_step * global_batch_size, epoch_size)
  stream = tf.data.Dataset.range(start_epoch, tf.int64.max).flat_map(epoch)
  stream = stream.skip(skipped).filter(
      lambda index, _: (index % global_batch_size) // batch_size == process
  )
  if not data_config.cache:
    stream = stream.map(
        lambda index, example: (index, decode(example)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
  finish = _make_finish_fn(config, data_config, config.seed, random_crop=True)
  stream = stream.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
  stream = stream.batch(batch_size, drop_remainder=True)
  return _with_clear_errors(tfds.as_numpy(stream.prefetch(tf.data.AUTOTUNE)))


def count_eval_batches(
    config: ml_collections.ConfigDict, source: data_source.DataSource
) -> int:
  """Number of evaluation batches, the same on every process."""
  splits = source.builder.info.splits
  largest_part = max(
      splits[part].num_examples
      for part in _process_parts(source.config.eval_split)
  )
  return math.ceil(largest_part / _process_batch_size(config.eval.batch_size))


def create_eval_iterator(
    config: ml_collections.ConfigDict, source: data_source.DataSource
) -> Iterator[Batch]:
  """Yields the evaluation split once, with holes fixed by `config.eval.seed`.

  Every process yields `count_eval_batches(config, source)` full batches;
  slots past the end of the split hold zeros and have `weight` 0 (real
  examples have weight 1), so that every process runs the same compiled
  evaluation.

  Args:
    config: the run's config; its data values are read from `source`.
    source: `config.data`, resolved.
  """
  data_config = source.config
  batch_size = _process_batch_size(config.eval.batch_size)
  dataset = _read_split(source, data_config.eval_split, per_process=True)
  finish = _make_finish_fn(
      config, data_config, config.eval.seed, random_crop=False
  )
  # Each example is numbered by its position in the split, which seeds its
  # hole: the same holes on any number of processes.
  dataset = dataset.map(
      lambda example: _decode(example, data_config, source.label_lookup),
      num_parallel_calls=tf.data.AUTOTUNE,
  ).enumerate(start=_part_start(source, data_config.eval_split))
  dataset = dataset.map(finish, num_parallel_calls=tf.data.AUTOTUNE).batch(
      batch_size
  )
  batches = _with_clear_errors(
      tfds.as_numpy(dataset.prefetch(tf.data.AUTOTUNE))
  )
  size = data_config.image_size
  empty = {
      "image": np.zeros([0, size, size, 3], np.float32),
      "label": np.zeros([0, size, size], np.int32),
      "mask": np.zeros([0, size, size, 1], np.float32),
  }
  for _ in range(count_eval_batches(config, source)):
    yield _pad_batch(next(batches, empty), batch_size)


def _pad_batch(batch: Batch, batch_size: int) -> Batch:
  """Pads a batch with zeros to `batch_size`; `weight` marks the real rows."""
  count = len(batch["image"])
  padded = {
      key: np.concatenate(
          [value, np.zeros((batch_size - count,) + value.shape[1:], value.dtype)]
      )
      for key, value in batch.items()
  }
  padded["weight"] = (np.arange(batch_size) < count).astype(np.float32)
  return padded
