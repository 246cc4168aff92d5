"""Tests for the synthetic street scenes: the renderer and the TFDS builder."""

import numpy as np
import pytest

from spg_jax.data.builders import street_scenes
from spg_jax.data.cityscapes_labels import CITYSCAPES_CATEGORIES

_NUM_CLASSES = CITYSCAPES_CATEGORIES.num_classes
_SKY = CITYSCAPES_CATEGORIES.index("sky")
_FLAT = CITYSCAPES_CATEGORIES.index("flat")
_CONSTRUCTION = CITYSCAPES_CATEGORIES.index("construction")
_NATURE = CITYSCAPES_CATEGORIES.index("nature")
_VEHICLE = CITYSCAPES_CATEGORIES.index("vehicle")


def _render(seed, size=64):
  return street_scenes.render_scene(np.random.default_rng(seed), size)


@pytest.fixture(scope="module")
def scenes():
  """50 scenes at 64x64: images [50, 64, 64, 3] and labels [50, 64, 64]."""
  images, labels = zip(*[_render([7, i]) for i in range(50)])
  return np.stack(images), np.stack(labels)


@pytest.mark.parametrize("size", [32, 64, 100, 256])
def test_shapes_and_dtypes(size):
  image, label = _render(0, size)
  assert image.shape == (size, size, 3) and image.dtype == np.uint8
  assert label.shape == (size, size) and label.dtype == np.uint8


def test_same_seed_same_scene_and_different_seeds_differ():
  image, label = _render([1, 2])
  image2, label2 = _render([1, 2])
  np.testing.assert_array_equal(image, image2)
  np.testing.assert_array_equal(label, label2)
  other_image, other_label = _render([1, 3])
  assert (other_image != image).mean() > 0.5
  assert (other_label != label).mean() > 0.05


def test_rng_is_advanced_so_consecutive_scenes_differ():
  rng = np.random.default_rng(0)
  first, _ = street_scenes.render_scene(rng, 32)
  second, _ = street_scenes.render_scene(rng, 32)
  assert (first != second).mean() > 0.5


def test_same_seed_same_layout_at_every_size():
  for i in range(10):
    _, small = _render([4, i], 64)
    _, large = _render([4, i], 128)
    # Pixel centres of the two grids differ by a quarter of a small pixel, so
    # only pixels at class boundaries may disagree.
    assert (large[::2, ::2] == small).mean() > 0.9


def test_every_class_appears_with_valid_ids(scenes):
  _, labels = scenes
  assert labels.max() < _NUM_CLASSES
  present = np.bincount(labels.ravel(), minlength=_NUM_CLASSES) > 0
  assert present.all(), [
      name for name, p in zip(CITYSCAPES_CATEGORIES.names, present) if not p]


def test_sky_on_top_and_flat_at_the_bottom(scenes):
  _, labels = scenes
  half = labels.shape[1] // 2
  for class_id in (_SKY, _FLAT):
    top = (labels[:, :half] == class_id).sum()
    bottom = (labels[:, half:] == class_id).sum()
    share_top = top / (top + bottom)
    if class_id == _SKY:
      assert share_top > 0.95
    else:
      assert share_top < 0.1
  assert (labels[:, 0] == _SKY).mean() > 0.3  # Top rows show sky...
  assert (labels[:, -1] == _FLAT).mean() > 0.5  # ... and bottom rows road.


def test_layout_varies(scenes):
  _, labels = scenes
  # Horizon: the lowest sky row in the middle column changes between scenes.
  middle = labels[:, :, labels.shape[2] // 2]
  lowest_sky = [np.nonzero(column == _SKY)[0].max(initial=-1)
                for column in middle]
  assert len(set(lowest_sky)) > 5
  vehicle_fraction = (labels == _VEHICLE).mean(axis=(1, 2))
  assert (vehicle_fraction == 0).any() and vehicle_fraction.max() > 0.05


def test_texture_within_each_class(scenes):
  images, labels = scenes
  for class_id in (_SKY, _FLAT, _CONSTRUCTION, _NATURE, _VEHICLE):
    stds = [images[i][labels[i] == class_id].std(axis=0).mean()
            for i in range(len(images)) if (labels[i] == class_id).sum() > 30]
    assert len(stds) > 10
    # Every scene has texture inside the class, never a flat colour.
    assert min(stds) > 1.0, CITYSCAPES_CATEGORIES.names[class_id]
  # Instances differ: the mean building colour varies from scene to scene.
  means = [images[i][labels[i] == _CONSTRUCTION].mean(axis=0)
           for i in range(len(images)) if (labels[i] == _CONSTRUCTION).any()]
  assert np.std(means, axis=0).mean() > 5.0


def test_class_colours_are_distinct(scenes):
  images, labels = scenes
  stuff = (_FLAT, _CONSTRUCTION, _NATURE, _SKY)
  means = np.stack([images[labels == c].mean(axis=0) for c in stuff])
  distances = np.linalg.norm(means[:, None] - means[None], axis=-1)
  assert distances[~np.eye(len(stuff), dtype=bool)].min() > 20.0


def test_colour_predicts_class(scenes):
  """A colour-histogram classifier fit on 25 scenes works on the other 25."""
  images, labels = scenes
  bins = (images // 32).astype(np.int64)
  code = (bins[..., 0] * 64 + bins[..., 1] * 8 + bins[..., 2]).reshape(2, -1)
  target = labels.astype(np.int64).reshape(2, -1)
  counts = np.zeros((512, _NUM_CLASSES))
  np.add.at(counts, (code[0], target[0]), 1)
  accuracy = (counts.argmax(axis=1)[code[1]] == target[1]).mean()
  majority = np.bincount(target[1]).max() / target[1].size
  assert accuracy > majority + 0.25


def test_labels_explain_the_image(scenes):
  """Per-class mean colours predict pixels better than the scene's mean."""
  images, labels = scenes
  images = images.astype(np.float32)
  ratios = []
  for image, label in zip(images, labels):
    by_class = np.zeros_like(image)
    for class_id in np.unique(label):
      by_class[label == class_id] = image[label == class_id].mean(axis=0)
    class_error = np.abs(image - by_class).mean()
    scene_error = np.abs(image - image.mean(axis=(0, 1))).mean()
    ratios.append(class_error / scene_error)
  # Textures keep much variation inside classes (road and sidewalk are both
  # flat, windows are construction), but labels always help, usually a lot.
  assert max(ratios) < 0.95
  assert np.mean(ratios) < 0.7


def test_class_boundaries_are_sharp(scenes):
  """Colour jumps where the label changes, much more than inside a class."""
  images, labels = scenes
  images = images.astype(np.float32)
  step = np.abs(np.diff(images, axis=2)).sum(axis=-1)  # Horizontal steps.
  boundary = np.diff(labels, axis=2) != 0
  assert step[boundary].mean() > 3.0 * step[~boundary].mean()


# ---------------------------------------------------------------- The builder.


def _examples_by_id(data_dir, split):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from spg_jax.data.builders import synthetic_scenes  # pylint: disable=g-import-not-at-top,unused-import

  builder = tfds.builder("synthetic_scenes/s32", data_dir=str(data_dir))
  dataset = builder.as_dataset(split=split, shuffle_files=False)
  return {example["image_id"].decode(): example
          for example in tfds.as_numpy(dataset)}


def test_builder_configs():
  from spg_jax.data.builders import synthetic_scenes  # pylint: disable=g-import-not-at-top

  configs = synthetic_scenes.SyntheticScenes.BUILDER_CONFIGS
  assert [c.name for c in configs] == ["s64", "s128", "s256", "s32"]
  sizes = {c.name: (c.image_size, c.num_train, c.num_test) for c in configs}
  assert sizes == {"s64": (64, 3000, 256), "s128": (128, 3000, 256),
                   "s256": (256, 2000, 200), "s32": (32, 200, 64)}
  assert str(synthetic_scenes.SyntheticScenes.VERSION) == "1.0.0"


def test_builder_splits_shapes_and_determinism(scenes_data_dir, tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from spg_jax.data.builders import synthetic_scenes  # pylint: disable=g-import-not-at-top

  builder = tfds.builder("synthetic_scenes/s32", data_dir=str(scenes_data_dir))
  assert builder.info.splits["train"].num_examples == 200
  assert builder.info.splits["test"].num_examples == 64
  features = builder.info.features
  assert features["image"].shape == (32, 32, 3)
  assert features["label"].shape == (32, 32, 1)

  train = _examples_by_id(scenes_data_dir, "train")
  test = _examples_by_id(scenes_data_dir, "test")
  assert sorted(train) == [f"train_{i:06d}" for i in range(200)]
  assert sorted(test) == [f"test_{i:06d}" for i in range(64)]
  example = train["train_000005"]
  assert example["image"].shape == (32, 32, 3)
  assert example["image"].dtype == np.uint8
  assert example["label"].shape == (32, 32, 1)
  assert example["label"].dtype == np.uint8

  seed = synthetic_scenes.SyntheticScenes.builder_configs["s32"].seed
  image, label = street_scenes.render_scene(
      np.random.default_rng([seed, 0, 5]), 32)
  np.testing.assert_array_equal(example["image"], image)
  np.testing.assert_array_equal(example["label"][..., 0], label)
  image, label = street_scenes.render_scene(
      np.random.default_rng([seed, 1, 3]), 32)
  np.testing.assert_array_equal(test["test_000003"]["image"], image)
  # Train and test hold different scenes.
  assert not np.array_equal(train["train_000003"]["image"], image)

  # A second build, elsewhere, gives the same examples.
  tfds.builder("synthetic_scenes/s32",
               data_dir=str(tmp_path)).download_and_prepare()
  rebuilt = _examples_by_id(tmp_path, "test")
  for image_id, example in test.items():
    np.testing.assert_array_equal(rebuilt[image_id]["image"], example["image"])
    np.testing.assert_array_equal(rebuilt[image_id]["label"], example["label"])
