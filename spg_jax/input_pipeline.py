"""tf.data input pipeline: TFDS -> decode -> resize -> labels -> holes -> batches.

Batches are dicts of numpy arrays holding this process's share of the global
batch: `image` float32 [B, H, W, 3] in [-1, 1], `label` int32 [B, H, W] and
`mask` float32 [B, H, W, 1] with 1 = hole. The training code lays them out on
the device mesh.

Everything random is a pure function of the config's seed and of an example's
position in the stream (the epoch order comes from a seeded shuffle, each hole
and crop from a stateless seed made of the seed and the example's index), so
the stream is the same on every run, and a run resumed at step `s` sees
exactly the batches an uninterrupted run sees from step `s` on.
"""

from collections.abc import Iterator
import math

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from spg_jax import masks
# Imported for its side effect: registers the synthetic_scenes builder.
from spg_jax.datasets import synthetic_scenes  # pylint: disable=unused-import

RESIZE_MODES = ("squash", "crop")

Batch = dict[str, np.ndarray]

# Salts that keep the random streams of crops and holes apart.
_CROP_STREAM = 1
_MASK_STREAM = 2


def _check_data_config(data_config: ml_collections.ConfigDict) -> None:
  if data_config.resize not in RESIZE_MODES:
    raise ValueError(
        f"Unknown config.data.resize={data_config.resize!r}; choose one of"
        f" {RESIZE_MODES}."
    )


def _builder(data_config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Returns the prepared TFDS builder, building the dataset if needed."""
  builder = tfds.builder(data_config.name, data_dir=data_config.data_dir)
  builder.download_and_prepare()
  return builder


def _read_split(
    data_config: ml_collections.ConfigDict, split: str, drop_remainder: bool
) -> tf.data.Dataset:
  """Reads this process's shard of a split, in order."""
  builder = _builder(data_config)
  process_split = tfds.split_for_jax_process(split, drop_remainder=drop_remainder)
  dataset = builder.as_dataset(
      split=process_split,
      shuffle_files=False,
      # One file at a time in order; no automatic caching, since the
      # training stream caches decoded examples itself.
      read_config=tfds.ReadConfig(
          interleave_cycle_length=1, try_autocache=False
      ),
  )
  return dataset


def _decode(
    example: dict[str, tf.Tensor], data_config: ml_collections.ConfigDict
) -> dict[str, tf.Tensor]:
  """Image to float32 [-1, 1], labels to int32 [H, W], resized deterministically.

  'squash' resizes straight to image_size x image_size (the paper squashes
  Cityscapes' 2:1 frame); 'crop' resizes the shorter side to image_size and
  leaves the square crop to `_crop`.
  """
  image = tf.cast(example[data_config.image_key], tf.float32) / 127.5 - 1.0
  label = tf.cast(example[data_config.label_key], tf.int32)
  size = data_config.image_size
  if data_config.resize == "squash":
    target = tf.constant([size, size])
  else:
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_min(shape)
    target = tf.cast(tf.math.ceil(shape * scale), tf.int32)
  image = tf.image.resize(image, target, method="bilinear", antialias=True)
  label = tf.image.resize(label, target, method="nearest")
  return {"image": tf.clip_by_value(image, -1.0, 1.0), "label": label[..., 0]}


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
    config: ml_collections.ConfigDict, seed: int, random_crop: bool
):
  """Returns a map fn (global index, decoded example) -> model example."""
  size = config.data.image_size
  mask_fn = masks.make_mask_fn(config.masks, size, size)

  def finish(index: tf.Tensor, example: dict[str, tf.Tensor]):
    index = tf.cast(index, tf.int64)
    if config.data.resize == "crop":
      crop_seed = tf.stack([tf.constant(seed, tf.int64) + _CROP_STREAM, index])
      example = _crop(example, size, crop_seed if random_crop else None)
    mask_seed = tf.stack([tf.constant(seed, tf.int64) + _MASK_STREAM, index])
    image = tf.ensure_shape(example["image"], [size, size, 3])
    label = tf.ensure_shape(example["label"], [size, size])
    return {"image": image, "label": label, "mask": mask_fn(mask_seed)}

  return finish


def _process_batch_size(global_batch_size: int) -> int:
  if global_batch_size % jax.process_count():
    raise ValueError(
        f"The global batch size {global_batch_size} must be divisible by the"
        f" number of processes ({jax.process_count()})."
    )
  return global_batch_size // jax.process_count()


def _global_index(local_index: tf.Tensor) -> tf.Tensor:
  """Numbers the examples of all processes apart: process p takes p, p+n, ..."""
  return local_index * jax.process_count() + jax.process_index()


def create_train_iterator(
    config: ml_collections.ConfigDict, start_step: int = 0
) -> Iterator[Batch]:
  """Yields this process's training batches from step `start_step` on.

  The decoded split is cached in memory, shuffled anew each epoch with a
  seeded order and repeated forever.
  """
  _check_data_config(config.data)
  batch_size = _process_batch_size(config.batch_size)
  dataset = _read_split(config.data, config.data.train_split, True)
  dataset = dataset.map(
      lambda example: _decode(example, config.data),
      num_parallel_calls=tf.data.AUTOTUNE,
  ).cache()
  dataset = dataset.shuffle(
      config.data.shuffle_buffer_size,
      seed=config.seed + jax.process_index(),
      reshuffle_each_iteration=True,
  ).repeat()
  dataset = dataset.enumerate().skip(start_step * batch_size)
  finish = _make_finish_fn(config, config.seed, random_crop=True)
  dataset = dataset.map(
      lambda index, example: finish(_global_index(index), example),
      num_parallel_calls=tf.data.AUTOTUNE,
  )
  dataset = dataset.batch(batch_size, drop_remainder=True)
  return iter(tfds.as_numpy(dataset.prefetch(tf.data.AUTOTUNE)))


def count_eval_batches(config: ml_collections.ConfigDict) -> int:
  """Number of evaluation batches, the same on every process."""
  builder = _builder(config.data)
  size = builder.info.splits[config.data.eval_split].num_examples
  per_process = math.ceil(size / jax.process_count())
  return math.ceil(per_process / _process_batch_size(config.eval.batch_size))


def create_eval_iterator(config: ml_collections.ConfigDict) -> Iterator[Batch]:
  """Yields the evaluation split once, with holes fixed by `config.eval.seed`.

  Every process yields `count_eval_batches(config)` full batches; slots
  past the end of the split hold zeros and have `weight` 0 (real examples
  have weight 1), so that every process runs the same compiled evaluation.
  """
  _check_data_config(config.data)
  batch_size = _process_batch_size(config.eval.batch_size)
  dataset = _read_split(config.data, config.data.eval_split, False)
  finish = _make_finish_fn(config, config.eval.seed, random_crop=False)
  dataset = dataset.map(
      lambda example: _decode(example, config.data),
      num_parallel_calls=tf.data.AUTOTUNE,
  ).enumerate()
  dataset = dataset.map(
      lambda index, example: finish(_global_index(index), example),
      num_parallel_calls=tf.data.AUTOTUNE,
  ).batch(batch_size)
  batches = iter(tfds.as_numpy(dataset.prefetch(tf.data.AUTOTUNE)))
  size = config.data.image_size
  empty = {
      "image": np.zeros([0, size, size, 3], np.float32),
      "label": np.zeros([0, size, size], np.int32),
      "mask": np.zeros([0, size, size, 1], np.float32),
  }
  for _ in range(count_eval_batches(config)):
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
