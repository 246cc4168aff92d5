"""Tests of the DeepLabv3+ segmenter (spg_jax.models.segmenter)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from configs import synthetic
from spg_jax.models import segmenter

_CLASSES = 5
# Non-square, a multiple of both output strides (8 and 16).
_HEIGHT, _WIDTH = 32, 48


def _tiny_config(name: str = "default"):
  """The segmenter of config `name`'s tiny variant."""
  module = {"default": default, "synthetic": synthetic}[name]
  return module.get_config("tiny").model.segmenter


def _inputs(batch: int, height: int = _HEIGHT, width: int = _WIDTH):
  """Random images in [-1, 1] and a different rectangular hole in each."""
  rng = np.random.default_rng(0)
  image = rng.uniform(-1, 1, [batch, height, width, 3]).astype(np.float32)
  mask = np.zeros([batch, height, width, 1], np.float32)
  for example in mask:
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    bottom = top + rng.integers(4, height // 2)
    right = left + rng.integers(4, width // 2)
    example[top:bottom, left:right] = 1.0
  return image, mask


def _shapes(net, height, width):
  """The parameter shapes of `net` at that input size, allocating nothing."""
  image = jax.ShapeDtypeStruct((1, height, width, 3), jnp.float32)
  mask = jax.ShapeDtypeStruct((1, height, width, 1), jnp.float32)
  return jax.eval_shape(net.init, jax.random.key(0), image, mask)


def _random_params(net):
  """Parameters of `net` drawn by NumPy, shaped as its `init` shapes them.

  What these tests check holds for any weights, and XLA:CPU takes tens of
  seconds to compile the jax.random draws of `init`.
  """
  rng = np.random.default_rng(0)
  return jax.tree.map(
      lambda leaf: rng.normal(0.0, 0.5, leaf.shape).astype(np.float32),
      _shapes(net, _HEIGHT, _WIDTH),
  )


@pytest.mark.parametrize(
    "config_name, dtype",
    [("default", jnp.bfloat16), ("synthetic", jnp.float32)],
)
def test_logits_are_float32_per_class_at_the_input_size(config_name, dtype):
  """Output strides 16 (default) and 8 (synthetic); float32 logits even
  when computing in bfloat16."""
  net = segmenter.Segmenter(_CLASSES, _tiny_config(config_name), dtype=dtype)
  image, mask = _inputs(2)
  logits = jax.jit(net.apply)(_random_params(net), image, mask)
  assert logits.shape == (2, _HEIGHT, _WIDTH, _CLASSES)
  assert logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))


def test_logits_ignore_the_holes_content():
  net = segmenter.Segmenter(_CLASSES, _tiny_config("synthetic"))
  image, mask = _inputs(3)
  params = _random_params(net)
  apply = jax.jit(net.apply)
  logits = apply(params, image, mask)
  rng = np.random.default_rng(1)
  filled = np.where(mask > 0, rng.uniform(-1, 1, image.shape), image)
  np.testing.assert_array_equal(apply(params, filled, mask), logits)
  # The known region is read: changing one of its pixels changes the logits.
  known = np.argwhere(mask[0, ..., 0] == 0)[0]
  changed = image.copy()
  changed[0, known[0], known[1]] += 0.5
  assert not np.array_equal(apply(params, changed, mask), logits)


def test_resnet50_backbone_has_torchvision_parameter_count():
  """torchvision's resnet50 without fc, 23,508,032 parameters, plus the
  stem's weights for the mask channel, 7 * 7 * 1 * 64; GroupNorm's scale
  and bias stand for BatchNorm's weight and bias."""
  net = segmenter.Segmenter(19, default.get_config().model.segmenter)
  params = _shapes(net, 64, 64)["params"]["DeepLabV3Plus_0"]["backbone"]
  count = sum(leaf.size for leaf in jax.tree.leaves(params))
  assert count == 23_508_032 + 7 * 7 * 1 * 64


def test_parameter_tree_is_the_same_whatever_remat():
  config = _tiny_config()
  trees = [
      jax.tree.map(
          lambda leaf: leaf.shape,
          _shapes(segmenter.Segmenter(_CLASSES, config, remat=remat), 32, 32),
      )
      for remat in ("none", "full")
  ]
  assert trees[0] == trees[1]


def test_size_not_a_multiple_of_the_output_stride_is_refused():
  net = segmenter.Segmenter(_CLASSES, _tiny_config())
  with pytest.raises(
      ValueError,
      match=(
          r"height and width divisible by 16 \(output_stride=16\); got"
          r" 32x40\. Pad the input or choose a size that is a multiple\."
      ),
  ):
    _shapes(net, 32, 40)


def test_unknown_output_stride_is_refused():
  config = _tiny_config()
  config.output_stride = 4
  net = segmenter.Segmenter(_CLASSES, config)
  with pytest.raises(
      ValueError, match=r"Unknown output_stride 4; choose one of \(16, 8\)\."
  ):
    _shapes(net, 32, 32)


def test_group_count_is_the_largest_divisor_within_norm_groups():
  assert segmenter.group_count(48, 32) == 24
  assert segmenter.group_count(256, 32) == 32
  assert segmenter.group_count(8, 32) == 8
  assert segmenter.group_count(7, 4) == 1
