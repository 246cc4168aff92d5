"""Tests of the tf.data input pipeline on the small synthetic scenes."""

import itertools

import numpy as np
import pytest

from configs import synthetic
from spg_jax import input_pipeline


@pytest.fixture
def config(scenes_data_dir):
  config = synthetic.get_config("tiny")
  config.data.name = "synthetic_scenes/s32"
  config.data.data_dir = str(scenes_data_dir)
  config.data.image_size = 32
  config.batch_size = 8
  return config


def _take(iterator, count):
  return list(itertools.islice(iterator, count))


def test_batches_have_the_documented_layout(config):
  batch = next(input_pipeline.create_train_iterator(config))
  assert batch["image"].shape == (8, 32, 32, 3)
  assert batch["image"].dtype == np.float32
  assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
  assert batch["label"].shape == (8, 32, 32)
  assert batch["label"].dtype == np.int32
  assert 0 <= batch["label"].min() and batch["label"].max() < 8
  assert batch["mask"].shape == (8, 32, 32, 1)
  assert set(np.unique(batch["mask"])) <= {0.0, 1.0}


def test_holes_are_paper_rectangles(config):
  for batch in _take(input_pipeline.create_train_iterator(config), 3):
    for mask in batch["mask"][..., 0]:
      rows = np.flatnonzero(mask.any(axis=1))
      cols = np.flatnonzero(mask.any(axis=0))
      assert mask.sum() == len(rows) * len(cols)  # one filled rectangle
      for side in (len(rows), len(cols)):
        assert 32 // 8 <= side <= 32 // 2


def test_training_stream_is_deterministic(config):
  first = _take(input_pipeline.create_train_iterator(config), 3)
  second = _take(input_pipeline.create_train_iterator(config), 3)
  for a, b in zip(first, second):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  assert not np.array_equal(first[0]["image"], first[1]["image"])


def test_resumed_stream_continues_where_the_whole_one_is(config):
  # 200 training scenes, 8 per batch: step 30 lies in the second epoch.
  whole = _take(input_pipeline.create_train_iterator(config), 32)
  resumed = _take(input_pipeline.create_train_iterator(config, start_step=30), 2)
  for a, b in zip(whole[30:], resumed):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


def test_seed_changes_order_and_holes(config):
  first = next(input_pipeline.create_train_iterator(config))
  config.seed = 1
  other = next(input_pipeline.create_train_iterator(config))
  assert not np.array_equal(first["image"], other["image"])
  assert not np.array_equal(first["mask"], other["mask"])


def test_eval_stream_covers_the_split_once_with_padding(config):
  config.eval.batch_size = 24
  batches = list(input_pipeline.create_eval_iterator(config))
  # 64 test scenes in batches of 24: 24 + 24 + 16 real, 8 padding.
  assert len(batches) == input_pipeline.count_eval_batches(config) == 3
  weights = np.concatenate([b["weight"] for b in batches])
  np.testing.assert_array_equal(weights, [1.0] * 64 + [0.0] * 8)
  assert np.all(batches[-1]["image"][16:] == 0)
  again = list(input_pipeline.create_eval_iterator(config))
  np.testing.assert_array_equal(batches[1]["mask"], again[1]["mask"])


def test_squash_and_crop_give_the_configured_size(config):
  config.data.image_size = 16
  squashed = next(input_pipeline.create_eval_iterator(config))
  config.data.resize = "crop"
  cropped = next(input_pipeline.create_eval_iterator(config))
  assert squashed["image"].shape == cropped["image"].shape == (4, 16, 16, 3)
  # Square scenes: the central crop of the resized scene is the scene.
  np.testing.assert_allclose(squashed["image"], cropped["image"], atol=1e-6)


def test_unknown_resize_mode_is_a_clear_error(config):
  config.data.resize = "stretch"
  with pytest.raises(ValueError, match="config.data.resize='stretch'"):
    next(input_pipeline.create_train_iterator(config))
