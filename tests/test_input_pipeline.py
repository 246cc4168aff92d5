"""Tests of the tf.data input pipeline on the small synthetic scenes."""

import itertools
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from spg_jax.data import data_source
from spg_jax.data import input_pipeline
from spg_jax.data import labelling
from spg_jax.data import preparation


@pytest.fixture
def config(scenes_config):
  scenes_config.batch_size = 8
  return scenes_config


def _take(iterator, count):
  return list(itertools.islice(iterator, count))


def _train(config, start_step=0):
  source = data_source.DataSource.resolve(config.data)
  return input_pipeline.create_train_iterator(config, source, start_step)


def _eval(config):
  source = data_source.DataSource.resolve(config.data)
  return input_pipeline.create_eval_iterator(config, source)


def test_batches_have_the_documented_layout(config):
  batch = next(_train(config))
  assert batch["image"].shape == (8, 32, 32, 3)
  assert batch["image"].dtype == np.float32
  assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
  assert batch["label"].shape == (8, 32, 32)
  assert batch["label"].dtype == np.int32
  assert 0 <= batch["label"].min() and batch["label"].max() < 8
  assert batch["mask"].shape == (8, 32, 32, 1)
  assert set(np.unique(batch["mask"])) <= {0.0, 1.0}


def test_holes_are_paper_rectangles(config):
  for batch in _take(_train(config), 3):
    for mask in batch["mask"][..., 0]:
      rows = np.flatnonzero(mask.any(axis=1))
      cols = np.flatnonzero(mask.any(axis=0))
      assert mask.sum() == len(rows) * len(cols)  # one filled rectangle
      for side in (len(rows), len(cols)):
        assert 32 // 8 <= side <= 32 // 2


def test_training_stream_is_deterministic(config):
  first = _take(_train(config), 3)
  second = _take(_train(config), 3)
  for a, b in zip(first, second):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  assert not np.array_equal(first[0]["image"], first[1]["image"])


def test_resumed_stream_continues_where_the_whole_one_is(config):
  # 200 training scenes, 12 per batch: step 33 starts at example 396, in
  # the second epoch, and its batch reaches into the third (from 400 on).
  config.batch_size = 12
  whole = _take(_train(config), 35)
  resumed = _take(_train(config, start_step=33), 2)
  for a, b in zip(whole[33:], resumed, strict=True):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("cache", [True, False])
def test_processes_share_each_global_batch_as_one_process_has_it(
    config, monkeypatch, cache
):
  """Three processes (as JAX would number them) each take their third of
  every global batch of 12; side by side they are the one-process batches,
  holes included, from the start and on resuming at step 33 (whose batch
  reaches from the second epoch into the third)."""
  config.batch_size = 12
  config.data.cache = cache
  whole = _take(_train(config), 35)
  monkeypatch.setattr(input_pipeline.jax, "process_count", lambda: 3)
  for start_step in (0, 33):
    shares = []
    for process in range(3):
      monkeypatch.setattr(input_pipeline.jax, "process_index",
                          lambda p=process: p)
      shares.append(_take(_train(config, start_step=start_step), 2))
    for step, parts in enumerate(zip(*shares, strict=True)):
      for key in whole[0]:
        assert all(len(part[key]) == 4 for part in parts)
        np.testing.assert_array_equal(
            np.concatenate([part[key] for part in parts]),
            whole[start_step + step][key],
        )


def _example_keys(batches):
  """Each example's ground-truth image as bytes: the scenes are distinct."""
  return [image.tobytes() for batch in batches for image in batch["image"]]


def test_each_epoch_shows_every_example_once_in_its_own_order(config):
  # 200 training scenes, 8 per batch: 25 steps an epoch.
  batches = _take(_train(config), 75)
  keys = _example_keys(batches)
  epochs = [keys[:200], keys[200:400], keys[400:]]
  assert len(set(epochs[0])) == 200
  for epoch in epochs[1:]:
    assert sorted(epoch) == sorted(epochs[0])
    assert epoch != epochs[0]
  assert epochs[1] != epochs[2]
  # A hole comes from the example's position in the whole stream, not in
  # its epoch: the second epoch's holes are not the first's again.
  masks = np.concatenate([batch["mask"] for batch in batches])
  assert not np.array_equal(masks[:200], masks[200:400])


@pytest.mark.parametrize("cache", [True, False])
def test_the_cache_decodes_each_example_once_across_epochs(
    config, monkeypatch, cache
):
  decoded = []
  decode = input_pipeline._decode  # pylint: disable=protected-access

  def counting_decode(example, data_config, lookup):
    result = decode(example, data_config, lookup)
    label = result["label"]
    counted = tf.py_function(
        lambda value: decoded.append(1) or value, [label], label.dtype
    )
    return {**result, "label": tf.ensure_shape(counted, label.shape)}

  monkeypatch.setattr(input_pipeline, "_decode", counting_decode)
  config.data.cache = cache
  # 2.5 epochs of 200 scenes, started in the first at step 10.
  _take(_train(config, start_step=10), 52)
  if cache:
    assert len(decoded) == 200
  else:
    # Each example the 52 batches hold, decoded when it is read (a few
    # more read ahead); the 80 skipped to reach step 10 are not decoded.
    assert 52 * 8 <= len(decoded) < 52 * 8 + 80


def test_seed_changes_order_and_holes(config):
  first = next(_train(config))
  config.seed = 1
  other = next(_train(config))
  assert not np.array_equal(first["image"], other["image"])
  assert not np.array_equal(first["mask"], other["mask"])


def test_eval_stream_covers_the_split_once_with_padding(config):
  config.eval.batch_size = 24
  source = data_source.DataSource.resolve(config.data)
  batches = list(input_pipeline.create_eval_iterator(config, source))
  # 64 test scenes in batches of 24: 24 + 24 + 16 real, 8 padding.
  assert len(batches) == input_pipeline.count_eval_batches(config, source) == 3
  weights = np.concatenate([b["weight"] for b in batches])
  np.testing.assert_array_equal(weights, [1.0] * 64 + [0.0] * 8)
  assert np.all(batches[-1]["image"][16:] == 0)
  again = list(_eval(config))
  np.testing.assert_array_equal(batches[1]["mask"], again[1]["mask"])


def _real_rows(batches):
  """The rows of `batches` that hold examples (weight 1), key by key."""
  batches = list(batches)
  return {
      key: np.concatenate([b[key][b["weight"] == 1] for b in batches])
      for key in ("image", "label", "mask")
  }


def test_processes_evaluate_the_examples_and_holes_of_one_process(
    config, monkeypatch
):
  """Three processes read consecutive parts of the 64 test scenes (22, 21
  and 21, so the last two end in padding); side by side their examples are
  the one-process stream's, each with the same hole."""
  config.eval.batch_size = 12
  whole = _real_rows(_eval(config))
  monkeypatch.setattr(input_pipeline.jax, "process_count", lambda: 3)
  parts = []
  for process in range(3):
    monkeypatch.setattr(input_pipeline.jax, "process_index",
                        lambda p=process: p)
    batches = list(_eval(config))
    # Every process runs as many batches as the largest part needs.
    assert len(batches) == 6
    parts.append(_real_rows(batches))
  assert [len(part["image"]) for part in parts] == [22, 21, 21]
  for key, value in whole.items():
    np.testing.assert_array_equal(
        np.concatenate([part[key] for part in parts]), value
    )


def test_squash_and_crop_give_the_configured_size(config):
  config.data.image_size = 16
  squashed = next(_eval(config))
  config.data.resize = "crop"
  cropped = next(_eval(config))
  assert squashed["image"].shape == cropped["image"].shape == (4, 16, 16, 3)
  # Square scenes: the central crop of the resized scene is the scene.
  np.testing.assert_allclose(squashed["image"], cropped["image"], atol=1e-6)


# The frames of the `nonsquare` dataset, (rows, columns): wide and tall, with
# the shorter side 32, so that 'crop' at image_size 32 leaves them unscaled
# and only the crop picks pixels.
_NONSQUARE_SHAPES = ((32, 100), (72, 32), (32, 100), (72, 32))


def _nonsquare_frame(number: int) -> tuple[np.ndarray, np.ndarray]:
  """Frame `number`: pixel (r, c) holds (r, c, number), so a crop says where
  it was taken; random labels, so that no label window but that one matches."""
  shape = _NONSQUARE_SHAPES[number]
  rows, columns = np.indices(shape)
  image = np.stack([rows, columns, np.full(shape, number)], axis=-1)
  labels = np.random.default_rng(number).integers(0, 8, shape + (1,))
  return image.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture(scope="module")
def nonsquare_data_dir(tmp_path_factory):
  """A TFDS data_dir holding `nonsquare`, every frame in train and test."""
  examples = []
  for number in range(len(_NONSQUARE_SHAPES)):
    image, label = _nonsquare_frame(number)
    examples.append(
        (number, {"image": image, "label": label, "image_id": f"f{number}"})
    )
  features = tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3)),
      "label": tfds.features.Image(shape=(None, None, 1)),
      "image_id": tfds.features.Text(),
  })
  data_dir = tmp_path_factory.mktemp("tfds_nonsquare")
  tfds.dataset_builders.store_as_tfds_dataset(
      name="nonsquare",
      version="1.0.0",
      features=features,
      split_datasets={"train": examples, "test": examples},
      data_dir=str(data_dir),
  )
  return data_dir


def _crop_origins(batch) -> list[tuple[int, int, int]]:
  """(frame, row, column) where each example's crop starts, read from its
  image; asserts that its image and labels are both that frame's window."""
  origins = []
  pixels = np.round((batch["image"] + 1.0) * 127.5).astype(np.int64)
  for image, label in zip(pixels, batch["label"]):
    row, column, number = image[0, 0]
    frame_image, frame_label = _nonsquare_frame(number)
    window = np.s_[row : row + 32, column : column + 32]
    np.testing.assert_array_equal(image, frame_image[window])
    np.testing.assert_array_equal(label, frame_label[window][..., 0])
    origins.append((int(number), int(row), int(column)))
  return origins


def test_crops_of_non_square_frames_keep_image_and_labels_together(
    config, nonsquare_data_dir
):
  config.data.update(
      dict(name="nonsquare", data_dir=str(nonsquare_data_dir),
           image_size=32, resize="crop", shuffle_buffer_size=1)
  )
  config.batch_size = 4
  config.eval.batch_size = 4
  # 3 epochs of the 4 frames, read in the same order whatever the seed
  # (shuffle_buffer_size=1), so that only the crops can change with it.
  origins = [o for b in _take(_train(config), 3) for o in _crop_origins(b)]
  for number, row, column in origins:
    rows, columns = _NONSQUARE_SHAPES[number]
    assert 0 <= row <= rows - 32 and 0 <= column <= columns - 32
  # A frame is cropped anew each epoch, and another seed crops elsewhere.
  for number in range(len(_NONSQUARE_SHAPES)):
    assert len({o for o in origins if o[0] == number}) > 1, origins
  config.seed = 1
  other = [o for b in _take(_train(config), 3) for o in _crop_origins(b)]
  assert [o[0] for o in other] == [o[0] for o in origins]
  assert other != origins
  # Evaluation takes the central square, across or down.
  central = sorted(_crop_origins(next(_eval(config))))
  assert central == [(0, 0, 34), (1, 20, 0), (2, 0, 34), (3, 20, 0)]


def test_unknown_resize_mode_is_a_clear_error(config):
  config.data.resize = "stretch"
  with pytest.raises(ValueError, match="config.data.resize='stretch'"):
    data_source.DataSource.resolve(config.data)


def test_label_maps_turn_stored_values_into_class_ids(config):
  config.data.classes = "oxford_pet_trimap"
  config.data.label_map = "oxford_pet_trimap_values"
  lookup = data_source.label_lookup(config.data)
  # Stored 1 = pet, 2 = background, 3 = outline; 0 is not a trimap value.
  np.testing.assert_array_equal(lookup, [labelling.UNMAPPED, 1, 0, 2])


def test_the_extra_label_value_becomes_its_class(config):
  config.data.extra_label_value = 255
  config.data.extra_label_value_class = 3
  lookup = data_source.label_lookup(config.data)
  np.testing.assert_array_equal(lookup[:8], np.arange(8))
  assert lookup[255] == 3
  assert np.all(lookup[8:255] == labelling.UNMAPPED)


def test_an_extra_label_value_inside_a_label_map_is_added(config):
  config.data.classes = "oxford_pet_trimap"
  config.data.label_map = "oxford_pet_trimap_values"
  config.data.extra_label_value = 0
  config.data.extra_label_value_class = 0
  lookup = data_source.label_lookup(config.data)
  np.testing.assert_array_equal(lookup, [0, 1, 0, 2])


@pytest.mark.parametrize(
    "value, class_id",
    [(255, None), (None, 0)],
    ids=["value_alone", "class_alone"],
)
def test_an_extra_label_value_and_its_class_go_together(
    config, value, class_id
):
  config.data.extra_label_value = value
  config.data.extra_label_value_class = class_id
  with pytest.raises(ValueError, match=r"go together: set both"):
    data_source.check_data_config(config.data)


def test_an_extra_label_value_that_the_map_lists_is_refused(config):
  """The stored 2 is already a class (background); admitting it again as
  another class would silently redefine it."""
  config.data.classes = "oxford_pet_trimap"
  config.data.label_map = "oxford_pet_trimap_values"
  config.data.extra_label_value = 2
  config.data.extra_label_value_class = 1
  with pytest.raises(ValueError, match=r"extra_label_value=2 already becomes"):
    data_source.check_data_config(config.data)


def test_a_label_map_into_other_classes_is_refused(config):
  config.data.classes = "helen"
  config.data.label_map = "oxford_pet_trimap_values"
  with pytest.raises(ValueError, match="maps into the classes 'oxford_pet"):
    data_source.check_data_config(config.data)


def test_labels_outside_the_class_table_name_the_example(config):
  # The scenes store the 8 category ids; a 3-class table cannot hold them.
  config.data.classes = "oxford_pet_trimap"
  with pytest.raises(preparation.DataError) as error:
    next(_eval(config))
  # Whichever example the parallel decoding checks first.
  assert re.search(
      r"the example test_\d{6} holds the raw label values [\d ]*[34567]",
      str(error.value),
  ), str(error.value)


def test_an_extra_label_value_class_outside_the_table_is_refused(config):
  config.data.extra_label_value = 255
  config.data.extra_label_value_class = 8
  with pytest.raises(
      ValueError, match=r"extra_label_value_class=8 must be a class id"
  ):
    data_source.check_data_config(config.data)
