"""Tests of the tf.data input pipeline on the small synthetic scenes."""

import itertools
import re

import numpy as np
import pytest

from spg_jax.data import input_pipeline
from spg_jax.data import labelling
from spg_jax.data import preparation


@pytest.fixture
def config(scenes_config):
  scenes_config.batch_size = 8
  return scenes_config


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


def test_label_maps_turn_stored_values_into_class_ids(config):
  config.data.classes = "oxford_pet_trimap"
  config.data.label_map = "oxford_pet_trimap_values"
  lookup = input_pipeline.label_lookup(config.data)
  # Stored 1 = pet, 2 = background, 3 = outline; 0 is not a trimap value.
  np.testing.assert_array_equal(lookup, [labelling.UNMAPPED, 1, 0, 2])


def test_the_ignore_label_becomes_the_ignore_class(config):
  config.data.ignore_label = 255
  config.data.ignore_class = 0
  lookup = input_pipeline.label_lookup(config.data)
  np.testing.assert_array_equal(lookup[:8], np.arange(8))
  assert lookup[255] == 0
  assert np.all(lookup[8:255] == labelling.UNMAPPED)


def test_a_label_map_into_other_classes_is_refused(config):
  config.data.classes = "helen"
  config.data.label_map = "oxford_pet_trimap_values"
  with pytest.raises(ValueError, match="maps into the classes 'oxford_pet"):
    input_pipeline.check_data_config(config.data)


def test_labels_outside_the_class_table_name_the_example(config):
  # The scenes store the 8 category ids; a 3-class table cannot hold them.
  config.data.classes = "oxford_pet_trimap"
  with pytest.raises(preparation.DataError) as error:
    next(input_pipeline.create_eval_iterator(config))
  # Whichever example the parallel decoding checks first.
  assert re.search(
      r"the example test_\d{6} holds the raw label values [\d ]*[34567]",
      str(error.value),
  ), str(error.value)


def test_an_ignore_class_outside_the_table_is_refused(config):
  config.data.ignore_label = 255
  config.data.ignore_class = 8
  with pytest.raises(ValueError, match=r"ignore_class=8 must be a class id"):
    input_pipeline.check_data_config(config.data)
