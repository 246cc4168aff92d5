"""Hole generators: which pixels of an image are missing.

Every mask is a float32 tensor [H, W, 1] with 1 = hole (missing) and 0 = known
(docs/design.md, data conventions). The generators are TensorFlow ops driven by a stateless
seed (an int32/int64 tensor of shape [2], as `tf.random.stateless_*` take), so
they run inside a `tf.data` map and draw the same hole for the same seed,
eagerly or in a graph.

- `rectangle_mask`: SPG-Net's hole, one rectangle at a random location with
  sides between 1/8 and 1/2 of the image sides.
- `center_mask`: a fixed centred rectangle, for comparable evaluations.
- `brush_stroke_mask`: free-form strokes as in DeepFill v2 and LaMa.
- `make_mask_fn`: a mixture of these, chosen with probabilities set in a config
  (LaMa-style); `spg_jax.data.mask_config.default_mask_config` is the paper's
  setting.
"""

import dataclasses
import functools
import math
from typing import Any, Callable

import ml_collections
import tensorflow as tf

# `probabilities` in a mask config must sum to 1 within this tolerance.
_PROBABILITY_TOLERANCE = 1e-6
# Brush strokes are never thinner than this radius in pixels. It exceeds half a
# pixel's diagonal (~0.707), so every stroke covers the pixel centre nearest to
# its first vertex: a brush mask always has at least one hole pixel.
_MIN_BRUSH_RADIUS_PX = 0.75
# Guards the projection onto a zero-length segment (a stroke's single point).
_EPSILON = 1e-12

# A Python int or an int32 scalar tensor.
_Int = int | tf.Tensor


def _round_half_up(value: float) -> int:
  """Rounds to the nearest integer, halves up (`round` rounds them to even)."""
  return math.floor(value + 0.5)


def _check_fraction(name: str, value: Any) -> None:
  if not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
    raise ValueError(
        f"{name} must be a fraction of the image side in (0, 1]; got {value!r}."
    )


def _check_fraction_range(
    min_name: str, min_value: Any, max_name: str, max_value: Any
) -> None:
  _check_fraction(min_name, min_value)
  _check_fraction(max_name, max_value)
  if min_value > max_value:
    raise ValueError(
        f"{min_name} ({min_value}) exceeds {max_name} ({max_value}); set"
        f" {min_name} <= {max_name}."
    )


def _check_count(name: str, value: Any) -> None:
  if not isinstance(value, int) or value < 1:
    raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")


def _check_rectangle_args(
    prefix: str, min_fraction: float, max_fraction: float
) -> None:
  """Raises ValueError for bad `rectangle_mask` arguments (`prefix`+name)."""
  _check_fraction_range(
      f"{prefix}min_fraction", min_fraction, f"{prefix}max_fraction",
      max_fraction,
  )


def _check_center_args(prefix: str, fraction: float) -> None:
  """Raises ValueError for a bad `center_mask` fraction (`prefix`+name)."""
  _check_fraction(f"{prefix}fraction", fraction)


def _check_brush_args(
    prefix: str,
    max_strokes: int,
    max_vertices: int,
    min_width_fraction: float,
    max_width_fraction: float,
    max_step_fraction: float,
) -> None:
  """Raises ValueError for bad `brush_stroke_mask` arguments."""
  _check_count(f"{prefix}max_strokes", max_strokes)
  _check_count(f"{prefix}max_vertices", max_vertices)
  _check_fraction_range(
      f"{prefix}min_width_fraction", min_width_fraction,
      f"{prefix}max_width_fraction", max_width_fraction,
  )
  _check_fraction(f"{prefix}max_step_fraction", max_step_fraction)


def _split_seed(seed: tf.Tensor, num: int) -> tf.Tensor:
  """Splits a seed into `num` independent ones, shape [num, 2].

  Casting to int64 first makes int32 and int64 seeds with equal values draw
  equal masks (`stateless_split` keeps the dtype, and its results differ).
  """
  return tf.random.experimental.stateless_split(
      tf.cast(seed, tf.int64), num=num
  )


def _uniform_int(seed: tf.Tensor, low: _Int, high: _Int) -> tf.Tensor:
  """Draws an int32 scalar uniformly from [low, high], both ends included."""
  return tf.random.stateless_uniform(
      [], seed, minval=low, maxval=high + 1, dtype=tf.int32
  )


def _box(
    height: int, width: int, top: _Int, left: _Int, box_height: _Int,
    box_width: _Int,
) -> tf.Tensor:
  """The [height, width, 1] mask that is 1 on one axis-aligned box."""
  rows = tf.range(height)
  cols = tf.range(width)
  in_rows = (rows >= top) & (rows < top + box_height)
  in_cols = (cols >= left) & (cols < left + box_width)
  box = in_rows[:, tf.newaxis] & in_cols[tf.newaxis, :]
  return tf.cast(box, tf.float32)[..., tf.newaxis]


def rectangle_sides(
    size: int, min_fraction: float, max_fraction: float
) -> tuple[int, int]:
  """The smallest and largest side in pixels `rectangle_mask` draws.

  Args:
    size: the image side (height or width) in pixels.
    min_fraction: smallest rectangle side as a fraction of `size`.
    max_fraction: largest rectangle side as a fraction of `size`.

  Returns:
    (low, high) = (max(1, r(min_fraction*size)), max(low, r(max_fraction*size)))
    where r rounds to the nearest integer, halves up; 1 <= low <= high <= size.
  """
  low = max(1, _round_half_up(min_fraction * size))
  return low, max(low, _round_half_up(max_fraction * size))


def rectangle_mask(
    seed: tf.Tensor,
    height: int,
    width: int,
    min_fraction: float,
    max_fraction: float,
) -> tf.Tensor:
  """SPG-Net's hole: one axis-aligned rectangle at a random location.

  Each side is drawn independently and uniformly among the whole numbers of
  pixels in `rectangle_sides(side, min_fraction, max_fraction)` (the fractions
  times the image side, rounded half up, at least 1 px). The rectangle's
  top-left corner is then uniform among the positions that keep it fully
  inside the image.

  Args:
    seed: stateless seed, int32/int64 tensor of shape [2].
    height: image height in pixels.
    width: image width in pixels.
    min_fraction: smallest side as a fraction of the image side, in (0, 1].
    max_fraction: largest side as a fraction of the image side, in
      [min_fraction, 1]. The paper uses 1/8 and 1/2.

  Returns:
    float32 [height, width, 1], 1 inside the rectangle, 0 elsewhere.
  """
  _check_rectangle_args("", min_fraction, max_fraction)
  seeds = _split_seed(seed, 4)
  box_height = _uniform_int(
      seeds[0], *rectangle_sides(height, min_fraction, max_fraction)
  )
  box_width = _uniform_int(
      seeds[1], *rectangle_sides(width, min_fraction, max_fraction)
  )
  top = _uniform_int(seeds[2], 0, height - box_height)
  left = _uniform_int(seeds[3], 0, width - box_width)
  return _box(height, width, top, left, box_height, box_width)


def center_mask(height: int, width: int, fraction: float) -> tf.Tensor:
  """A centred rectangle of fraction*height x fraction*width pixels.

  Sides are rounded half up and at least 1 px (as in `rectangle_sides`); the
  top-left corner is at ((height - side_h) // 2, (width - side_w) // 2). The
  same hole for every image makes evaluations comparable.

  Args:
    height: image height in pixels.
    width: image width in pixels.
    fraction: side of the hole as a fraction of the image side, in (0, 1].

  Returns:
    float32 [height, width, 1], 1 inside the centred rectangle.
  """
  _check_center_args("", fraction)
  box_height = rectangle_sides(height, fraction, fraction)[0]
  box_width = rectangle_sides(width, fraction, fraction)[0]
  return _box(
      height, width, (height - box_height) // 2, (width - box_width) // 2,
      box_height, box_width,
  )


def _reflect(coordinates: tf.Tensor, extent: tf.Tensor) -> tf.Tensor:
  """Folds coordinates into [0, extent] by reflecting at both ends.

  A random walk reflected this way stays inside the image without piling up
  vertices on the border, as clipping would.
  """
  phase = tf.math.floormod(coordinates, 2.0 * extent)
  return extent - tf.abs(phase - extent)


def brush_stroke_mask(
    seed: tf.Tensor,
    height: int,
    width: int,
    max_strokes: int,
    max_vertices: int,
    min_width_fraction: float,
    max_width_fraction: float,
    max_step_fraction: float,
) -> tf.Tensor:
  """Free-form holes: random-walk polylines drawn with a round brush.

  As in DeepFill v2 and LaMa: 1..max_strokes strokes, each a polyline of
  1..max_vertices vertices starting at a uniform point, every step in a uniform
  direction with a length uniform in [0, max_step_fraction * side]; the walk is
  reflected at the image border. Each stroke has one width, uniform in
  [min_width_fraction, max_width_fraction] * side, where side is the shorter
  image side. A pixel is a hole if its centre lies within half the width of a
  segment, which gives round joints and caps. The radius is at least
  `_MIN_BRUSH_RADIUS_PX`, so the mask always has a hole pixel.

  Computed for all pixels and all max_strokes x max_vertices segments at once
  (unused ones masked out): O(H * W * max_strokes * max_vertices) memory.

  Args:
    seed: stateless seed, int32/int64 tensor of shape [2].
    height: image height in pixels.
    width: image width in pixels.
    max_strokes: most strokes, >= 1.
    max_vertices: most vertices per stroke, >= 1 (1 draws a dot).
    min_width_fraction: thinnest brush, fraction of the shorter side.
    max_width_fraction: widest brush, fraction of the shorter side.
    max_step_fraction: longest step between vertices, fraction of the shorter
      side.

  Returns:
    float32 [height, width, 1] with values in {0, 1}, at least one 1.
  """
  _check_brush_args(
      "", max_strokes, max_vertices, min_width_fraction, max_width_fraction,
      max_step_fraction,
  )
  side = min(height, width)
  seeds = _split_seed(seed, 6)
  num_strokes = _uniform_int(seeds[0], 1, max_strokes)
  num_vertices = tf.random.stateless_uniform(
      [max_strokes, 1], seeds[1], minval=1, maxval=max_vertices + 1,
      dtype=tf.int32,
  )
  # Coordinates are (row, column) with pixel i's centre at i + 0.5.
  extent = tf.constant([height, width], tf.float32)
  start = tf.random.stateless_uniform([max_strokes, 1, 2], seeds[2]) * extent
  angle = tf.random.stateless_uniform(
      [max_strokes, max_vertices - 1], seeds[3], maxval=2.0 * math.pi
  )
  length = tf.random.stateless_uniform(
      [max_strokes, max_vertices - 1], seeds[4],
      maxval=max_step_fraction * side,
  )
  # Steps past a stroke's vertex count have length 0: its last vertex repeats.
  length *= tf.cast(tf.range(1, max_vertices) < num_vertices, tf.float32)
  steps = tf.stack([length * tf.sin(angle), length * tf.cos(angle)], axis=-1)
  walk = tf.concat([start, start + tf.cumsum(steps, axis=1)], axis=1)
  vertices = _reflect(walk, extent)  # [strokes, vertices, 2]
  radius = tf.maximum(
      tf.random.stateless_uniform(
          [max_strokes], seeds[5], minval=min_width_fraction * side,
          maxval=max_width_fraction * side,
      ) / 2.0,
      _MIN_BRUSH_RADIUS_PX,
  )

  # Segment k of a stroke joins vertex k to vertex k+1 (the last one to itself,
  # a dot, so a one-vertex stroke is drawn too).
  delta = tf.concat([vertices[:, 1:], vertices[:, -1:]], axis=1) - vertices
  delta_y, delta_x = delta[..., 0], delta[..., 1]
  # Pixel centre minus segment start, broadcast to [H, W, strokes, vertices].
  rows = tf.range(height, dtype=tf.float32) + 0.5
  cols = tf.range(width, dtype=tf.float32) + 0.5
  rel_y = rows[:, None, None, None] - vertices[..., 0]
  rel_x = cols[None, :, None, None] - vertices[..., 1]
  # Position along the segment (0 = start, 1 = end) of the nearest point.
  along = (rel_y * delta_y + rel_x * delta_x) / tf.maximum(
      delta_y**2 + delta_x**2, _EPSILON
  )
  along = tf.clip_by_value(along, 0.0, 1.0)
  squared_distance = (rel_y - along * delta_y) ** 2
  squared_distance += (rel_x - along * delta_x) ** 2
  active = tf.range(max_strokes) < num_strokes
  painted = (squared_distance <= (radius**2)[:, None]) & active[:, None]
  hole = tf.reduce_any(painted, axis=[2, 3])
  return tf.cast(hole, tf.float32)[..., tf.newaxis]


def _center_mask_from_seed(
    seed: tf.Tensor, height: int, width: int, fraction: float
) -> tf.Tensor:
  del seed  # The centred hole is the same for every seed.
  return center_mask(height, width, fraction)


@dataclasses.dataclass(frozen=True)
class _Kind:
  """A mask kind: its generator, argument check and config-fed arguments.

  Argument `arg` of kind `name` is read from config key f"{name}_{arg}".
  """

  generator: Callable[..., tf.Tensor]
  check: Callable[..., None]
  args: tuple[str, ...]


_KINDS = {
    "rectangle": _Kind(
        rectangle_mask, _check_rectangle_args, ("min_fraction", "max_fraction")
    ),
    "center": _Kind(_center_mask_from_seed, _check_center_args, ("fraction",)),
    "brush": _Kind(
        brush_stroke_mask,
        _check_brush_args,
        (
            "max_strokes",
            "max_vertices",
            "min_width_fraction",
            "max_width_fraction",
            "max_step_fraction",
        ),
    ),
}


def _config_value(mask_config: ml_collections.ConfigDict, key: str) -> Any:
  if key not in mask_config:
    raise ValueError(
        f"mask_config lacks {key!r}; start from mask_config.default_mask_config()"
        " and override fields."
    )
  return mask_config[key]


def _check_mixture(
    kinds: Any, probabilities: Any
) -> tuple[tuple[str, ...], tuple[float, ...]]:
  """Validates the mixture; returns kinds and probabilities as tuples."""
  if isinstance(kinds, str) or not kinds:
    raise ValueError(
        f"mask_config.kinds must be a non-empty tuple of names, e.g."
        f" ('rectangle',); got {kinds!r}."
    )
  for kind in kinds:
    if kind not in _KINDS:
      raise ValueError(
          f"mask_config.kinds has unknown kind {kind!r}; known kinds:"
          f" {', '.join(map(repr, _KINDS))}."
      )
  if len(probabilities) != len(kinds):
    raise ValueError(
        f"mask_config.kinds has {len(kinds)} entries but"
        f" mask_config.probabilities has {len(probabilities)}; give one"
        " probability per kind."
    )
  if any(p < 0 for p in probabilities):
    raise ValueError(
        f"mask_config.probabilities must be non-negative; got {probabilities}."
    )
  if abs(sum(probabilities) - 1.0) > _PROBABILITY_TOLERANCE:
    raise ValueError(
        f"mask_config.probabilities must sum to 1 (within"
        f" {_PROBABILITY_TOLERANCE}); got {probabilities}, summing to"
        f" {sum(probabilities)}."
    )
  return tuple(kinds), tuple(probabilities)


def make_mask_fn(
    mask_config: ml_collections.ConfigDict, height: int, width: int
) -> Callable[[tf.Tensor], tf.Tensor]:
  """Builds `mask_fn(seed) -> float32 [height, width, 1]` from a config.

  The config (see `mask_config.default_mask_config`) names the `kinds` of hole to draw
  ('rectangle', 'center', 'brush') with their `probabilities`, and each kind's
  parameters as `<kind>_<argument>`. Every key is validated here, those of
  unlisted kinds too, so a bad config fails before any data flows and enabling
  a kind later cannot expose a stale bad value.

  The seed is split in two independent streams: one picks the kind, the other
  draws its shape. Only the chosen kind is computed (`tf.switch_case`), so
  `mask_fn` works eagerly and inside `tf.data.Dataset.map` alike.

  Args:
    mask_config: the mask settings.
    height: image height in pixels.
    width: image width in pixels.

  Returns:
    mask_fn taking a stateless seed (int32/int64 tensor of shape [2]).

  Raises:
    ValueError: on an unknown kind, a missing key, probabilities that are
      negative, do not sum to 1 or do not match `kinds` in length, or a
      kind's parameters out of range.
  """
  kinds, probabilities = _check_mixture(
      _config_value(mask_config, "kinds"),
      _config_value(mask_config, "probabilities"),
  )
  arguments = {}
  for name, kind in _KINDS.items():
    arguments[name] = {
        arg: _config_value(mask_config, f"{name}_{arg}") for arg in kind.args
    }
    kind.check(f"mask_config.{name}_", **arguments[name])
  branches = [
      functools.partial(
          _KINDS[name].generator, height=height, width=width, **arguments[name]
      )
      for name in kinds
  ]
  # Kind i is chosen when a uniform draw in [0, 1) passes exactly i of the
  # cumulative thresholds. Normalising by the total (1 within the tolerance)
  # keeps a kind of probability 0 out of reach.
  total = sum(probabilities)
  thresholds = [
      sum(probabilities[: i + 1]) / total for i in range(len(kinds) - 1)
  ]

  def mask_fn(seed: tf.Tensor) -> tf.Tensor:
    choice_seed, shape_seed = tf.unstack(_split_seed(seed, 2))
    draw = tf.random.stateless_uniform([], choice_seed)
    passed = draw >= tf.constant(thresholds, tf.float32)
    index = tf.reduce_sum(tf.cast(passed, tf.int32))
    return tf.switch_case(
        index, [functools.partial(branch, shape_seed) for branch in branches]
    )

  return mask_fn
