"""Tests for spg_jax.data.masks: shapes of holes, determinism, tf.data, configs."""

import math

import numpy as np
import pytest
import tensorflow as tf

from spg_jax.data import mask_config
from spg_jax.data import masks

# Paper's hole sides, as fractions of the image side.
_PAPER_MIN = 1 / 8
_PAPER_MAX = 1 / 2
_NUM_SEEDS = 200
# Fixed first seed word; the second is the example index.
_SEED_WORD = 17


def _masks_from_dataset(mask_fn, count, seed_word=_SEED_WORD):
  """Runs mask_fn(seed=[seed_word, i]) for i < count inside Dataset.map."""
  dataset = tf.data.Dataset.range(count).map(
      lambda i: mask_fn(tf.stack([tf.constant(seed_word, tf.int64), i]))
  )
  return np.stack(list(dataset.as_numpy_iterator()))


def _eager_seed(i, seed_word=_SEED_WORD):
  return tf.constant([seed_word, i], tf.int64)


def _rectangle_fn(height, width):
  return lambda seed: masks.rectangle_mask(
      seed, height, width, _PAPER_MIN, _PAPER_MAX
  )


def _bounding_box(hole):
  """(top, left, height, width) of the hole pixels of a [H, W] array."""
  rows = np.flatnonzero(hole.any(axis=1))
  cols = np.flatnonzero(hole.any(axis=0))
  return rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("height,width", [(256, 256), (48, 80)])
def test_rectangle_is_one_box_with_paper_sides(height, width):
  holes = _masks_from_dataset(_rectangle_fn(height, width), _NUM_SEEDS)
  assert holes.shape == (_NUM_SEEDS, height, width, 1)
  assert holes.dtype == np.float32
  assert set(np.unique(holes)) <= {0.0, 1.0}
  side_ranges = (
      masks.rectangle_sides(height, _PAPER_MIN, _PAPER_MAX),
      masks.rectangle_sides(width, _PAPER_MIN, _PAPER_MAX),
  )
  boxes = []
  for hole in holes[..., 0]:
    top, left, box_height, box_width = _bounding_box(hole)
    # The bounding box is filled and nothing lies outside it.
    assert hole.sum() == box_height * box_width
    for side, size, (low, high) in zip(
        (box_height, box_width), (height, width), side_ranges
    ):
      assert math.floor(_PAPER_MIN * size) <= low <= side <= high
      assert high <= math.ceil(_PAPER_MAX * size)
    boxes.append((top, left, box_height, box_width))
  tops, lefts, box_heights, box_widths = map(np.array, zip(*boxes))
  # Both extreme sides are drawn: the range is used in full.
  assert (box_heights.min(), box_heights.max()) == side_ranges[0]
  assert (box_widths.min(), box_widths.max()) == side_ranges[1]
  # Locations vary and reach near every border of the image.
  assert len(set(zip(tops, lefts))) > _NUM_SEEDS // 2
  assert tops.min() < height // 8 < height * 7 // 8 < (tops + box_heights).max()
  assert lefts.min() < width // 8 < width * 7 // 8 < (lefts + box_widths).max()


def test_rectangle_sides_rule():
  assert masks.rectangle_sides(256, _PAPER_MIN, _PAPER_MAX) == (32, 128)
  # 0.5 * 5 = 2.5 rounds half up; 0.1 * 3 = 0.3 is raised to 1 px.
  assert masks.rectangle_sides(5, 0.5, 0.5) == (3, 3)
  assert masks.rectangle_sides(5, 0.1, 0.5) == (1, 3)
  assert masks.rectangle_sides(3, 0.1, 0.1) == (1, 1)
  assert masks.rectangle_sides(10, 0.01, 1.0) == (1, 10)


def test_rectangle_is_deterministic_in_seed():
  mask_fn = _rectangle_fn(64, 64)
  first = mask_fn(_eager_seed(3)).numpy()
  np.testing.assert_array_equal(first, mask_fn(_eager_seed(3)).numpy())
  np.testing.assert_array_equal(
      first, mask_fn(tf.constant([_SEED_WORD, 3], tf.int32)).numpy()
  )
  others = [mask_fn(_eager_seed(i)).numpy() for i in range(4, 10)]
  assert all(not np.array_equal(first, other) for other in others)


def test_dataset_map_matches_eager():
  config = mask_config.default_mask_config()
  config.kinds = ("rectangle", "brush", "center")
  config.probabilities = (0.4, 0.4, 0.2)
  for mask_fn in (_rectangle_fn(32, 40), masks.make_mask_fn(config, 32, 40)):
    in_graph = _masks_from_dataset(mask_fn, 12)
    eager = np.stack([mask_fn(_eager_seed(i)).numpy() for i in range(12)])
    np.testing.assert_array_equal(in_graph, eager)


def test_center_mask_exact_values():
  expected = np.zeros((8, 8), np.float32)
  expected[2:6, 2:6] = 1.0
  hole = masks.center_mask(8, 8, 0.5)
  assert hole.shape == (8, 8, 1) and hole.dtype == tf.float32
  np.testing.assert_array_equal(hole.numpy()[..., 0], expected)

  expected = np.zeros((8, 12), np.float32)
  expected[2:6, 3:9] = 1.0
  np.testing.assert_array_equal(
      masks.center_mask(8, 12, 0.5).numpy()[..., 0], expected
  )


@pytest.mark.parametrize(
    "height,width,max_strokes,max_vertices,min_width,max_width",
    [
        (64, 64, 4, 6, 1 / 16, 1 / 8),
        (48, 96, 2, 1, 1 / 16, 1 / 8),
        # Brush far thinner than a pixel: still at least one hole pixel.
        (5, 7, 1, 3, 0.001, 0.001),
    ],
)
def test_brush_is_binary_and_nonempty(
    height, width, max_strokes, max_vertices, min_width, max_width
):
  holes = _masks_from_dataset(
      lambda seed: masks.brush_stroke_mask(
          seed, height, width, max_strokes, max_vertices, min_width, max_width,
          1 / 4,
      ),
      50,
  )
  assert holes.shape == (50, height, width, 1)
  assert holes.dtype == np.float32
  assert set(np.unique(holes)) == {0.0, 1.0}
  assert (holes.sum(axis=(1, 2, 3)) >= 1).all()
  assert (holes.mean(axis=(1, 2, 3)) < 1).all()


def test_reflect_folds_walks_back_into_the_image():
  folded = masks._reflect(tf.constant([-1.0, 3.0, 11.0, 25.0]), 10.0)
  np.testing.assert_allclose(folded.numpy(), [1.0, 3.0, 9.0, 5.0])


def test_brush_dot_is_a_disc_of_the_set_width():
  size, width_fraction = 64, 1 / 4
  radius = width_fraction * size / 2
  holes = _masks_from_dataset(
      lambda seed: masks.brush_stroke_mask(
          seed, size, size, 1, 1, width_fraction, width_fraction, 1 / 4
      ),
      40,
  )[..., 0]
  sides = []
  for hole in holes:
    _, _, box_height, box_width = _bounding_box(hole)
    assert hole.sum() <= math.pi * (radius + 1) ** 2
    sides.extend((box_height, box_width))
  assert max(sides) <= 2 * radius + 1
  assert max(sides) >= 2 * radius - 1


@pytest.mark.parametrize(
    "max_strokes,max_vertices,most_dots",
    # Dots only: 1..4 strokes; one stroke: 1..3 vertices, so 1 to 2 steps.
    [(4, 1, 2), (1, 3, 0)],
)
def test_brush_draws_from_one_to_max_strokes_and_vertices(
    max_strokes, max_vertices, most_dots
):
  size, width_fraction = 64, 1 / 8
  dot_area = math.pi * (width_fraction * size / 2 + 1) ** 2
  holes = _masks_from_dataset(
      lambda seed: masks.brush_stroke_mask(
          seed, size, size, max_strokes, max_vertices, width_fraction,
          width_fraction, 1 / 2,
      ),
      40,
  )
  areas = holes.sum(axis=(1, 2, 3))
  # Some masks are a single dot: one stroke of one vertex.
  assert areas.min() <= dot_area
  # Others are more than `most_dots` dots: more strokes or vertices.
  assert areas.max() > max(most_dots, 1) * dot_area


def test_brush_is_deterministic_in_seed():
  def mask_fn(seed):
    return masks.brush_stroke_mask(seed, 32, 32, 4, 6, 1 / 16, 1 / 8, 1 / 4)

  first = mask_fn(_eager_seed(0)).numpy()
  np.testing.assert_array_equal(first, mask_fn(_eager_seed(0)).numpy())
  assert not np.array_equal(first, mask_fn(_eager_seed(1)).numpy())


def _mixture_center_share(probabilities, count):
  config = mask_config.default_mask_config()
  config.kinds = ("rectangle", "center")
  config.probabilities = probabilities
  holes = _masks_from_dataset(masks.make_mask_fn(config, 32, 32), count)
  center = masks.center_mask(32, 32, config.center_fraction).numpy()
  return np.mean([np.array_equal(hole, center) for hole in holes])


def test_mixture_follows_probabilities():
  count = 400
  # Four binomial standard deviations (0.025 at p = 0.5, n = 400).
  assert abs(_mixture_center_share((0.5, 0.5), count) - 0.5) < 0.1
  assert _mixture_center_share((1.0, 0.0), count) == 0.0
  assert _mixture_center_share((0.0, 1.0), count) == 1.0


def test_default_config_is_the_paper_setting():
  config = mask_config.default_mask_config()
  assert tuple(config.kinds) == ("rectangle",)
  assert tuple(config.probabilities) == (1.0,)
  assert config.rectangle_min_fraction == _PAPER_MIN
  assert config.rectangle_max_fraction == _PAPER_MAX
  mask_fn = masks.make_mask_fn(config, 64, 64)
  hole = mask_fn(_eager_seed(0)).numpy()[..., 0]
  _, _, box_height, box_width = _bounding_box(hole)
  assert hole.sum() == box_height * box_width


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"kinds": ("rectangle", "circle"), "probabilities": (0.5, 0.5)},
            r"unknown kind 'circle'; known kinds: 'rectangle', 'center',"
            r" 'brush'",
        ),
        ({"kinds": "rectangle"}, r"mask_config.kinds must be a non-empty"),
        (
            {"kinds": ("rectangle", "center")},
            r"kinds has 2 entries but mask_config.probabilities has 1",
        ),
        (
            {"kinds": ("rectangle", "center"), "probabilities": (0.5, 0.4)},
            r"probabilities must sum to 1",
        ),
        (
            {"kinds": ("rectangle", "center"), "probabilities": (1.5, -0.5)},
            r"probabilities must be non-negative",
        ),
        (
            {"rectangle_min_fraction": 0.0},
            r"mask_config.rectangle_min_fraction must be a fraction of the"
            r" image side in \(0, 1\]",
        ),
        (
            {"rectangle_max_fraction": 1.5},
            r"mask_config.rectangle_max_fraction must be a fraction",
        ),
        (
            {"rectangle_min_fraction": 0.6},
            r"mask_config.rectangle_min_fraction \(0.6\) exceeds"
            r" mask_config.rectangle_max_fraction \(0.5\); set"
            r" mask_config.rectangle_min_fraction <=",
        ),
        ({"center_fraction": -0.5}, r"mask_config.center_fraction must be"),
        (
            {"brush_min_width_fraction": 0.5, "brush_max_width_fraction": 0.25},
            r"mask_config.brush_min_width_fraction \(0.5\) exceeds",
        ),
        (
            {"brush_max_step_fraction": 2.0},
            r"mask_config.brush_max_step_fraction must be a fraction",
        ),
        (
            {"brush_max_strokes": 0},
            r"mask_config.brush_max_strokes must be an integer >= 1",
        ),
    ],
)
def test_bad_config_raises(overrides, message):
  config = mask_config.default_mask_config()
  config.unlock()
  for key, value in overrides.items():
    del config[key]  # Allows a value of another type than the default's.
    config[key] = value
  with pytest.raises(ValueError, match=message):
    masks.make_mask_fn(config, 64, 64)


def test_missing_config_key_raises():
  config = mask_config.default_mask_config()
  del config["brush_max_vertices"]
  with pytest.raises(
      ValueError, match=r"lacks 'brush_max_vertices'.*default_mask_config"
  ):
    masks.make_mask_fn(config, 64, 64)


def test_generators_check_their_arguments():
  with pytest.raises(ValueError, match=r"^min_fraction \(0.9\) exceeds"):
    masks.rectangle_mask(_eager_seed(0), 8, 8, 0.9, 0.5)
  with pytest.raises(ValueError, match=r"^fraction must be a fraction"):
    masks.center_mask(8, 8, 0.0)
  with pytest.raises(ValueError, match=r"^max_vertices must be an integer"):
    masks.brush_stroke_mask(_eager_seed(0), 8, 8, 1, 0, 0.1, 0.2, 0.1)
