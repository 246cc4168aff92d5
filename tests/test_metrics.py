"""Tests for spg_jax.evaluation.metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spg_jax.evaluation import metrics

# Images in [0, 1] units, written here in the module's [-1, 1] convention.
_ZEROS = np.full((1, 2, 2, 1), -1.0, np.float32)  # 0 everywhere.
_UNIT_VALUES = np.array([[0.0, 0.5], [0.25, 1.0]], np.float32)
_TARGET = (2.0 * _UNIT_VALUES - 1.0).reshape(1, 2, 2, 1)
# Hole over the right column: unit differences 0.5 and 1.0.
_RIGHT_COLUMN = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32).reshape(
    1, 2, 2, 1
)


def _smooth_images(seed: int, batch: int = 2, size: int = 32) -> np.ndarray:
  """Random smooth RGB images in [-0.8, 0.8]: upsampled low-res noise."""
  rng = np.random.default_rng(seed)
  low = rng.uniform(-0.8, 0.8, (batch, size // 4, size // 4, 3))
  return np.asarray(
      jax.image.resize(low, (batch, size, size, 3), "linear"), np.float32
  )


def test_l1_l2_psnr_by_hand():
  np.testing.assert_allclose(
      metrics.per_image_l1(_ZEROS, _TARGET), [1.75 / 4], rtol=1e-6
  )
  mse = (0.25 + 0.0625 + 1.0) / 4
  np.testing.assert_allclose(
      metrics.per_image_l2(_ZEROS, _TARGET), [mse], rtol=1e-6
  )
  np.testing.assert_allclose(
      metrics.per_image_psnr(_ZEROS, _TARGET),
      [10 * np.log10(1 / mse)],
      rtol=1e-5,
  )


def test_weighted_metrics_average_over_hole_only():
  np.testing.assert_allclose(
      metrics.per_image_l1(_ZEROS, _TARGET, _RIGHT_COLUMN), [0.75], rtol=1e-6
  )
  np.testing.assert_allclose(
      metrics.per_image_l2(_ZEROS, _TARGET, _RIGHT_COLUMN), [0.625], rtol=1e-6
  )
  np.testing.assert_allclose(
      metrics.per_image_psnr(_ZEROS, _TARGET, _RIGHT_COLUMN),
      [10 * np.log10(1 / 0.625)],
      rtol=1e-5,
  )


def test_weighted_denominator_counts_channels():
  a = np.full((1, 2, 2, 3), -1.0, np.float32)
  b = a.copy()
  b[0, 0, 1, 0] = 1.0  # Unit difference 1 in one channel of a hole pixel.
  np.testing.assert_allclose(
      metrics.per_image_l1(a, b, _RIGHT_COLUMN), [1 / 6], rtol=1e-6
  )


def test_image_without_weight_gets_zero_and_is_flagged():
  a = np.concatenate([_ZEROS, _ZEROS])
  b = np.concatenate([_TARGET, _TARGET])
  weights = np.concatenate([_RIGHT_COLUMN, np.zeros_like(_RIGHT_COLUMN)])
  np.testing.assert_allclose(
      metrics.per_image_l1(a, b, weights), [0.75, 0.0], rtol=1e-6
  )
  np.testing.assert_array_equal(metrics.has_weight(weights), [True, False])


def test_psnr_of_identical_images_is_the_cap():
  images = _smooth_images(0)
  np.testing.assert_allclose(
      metrics.per_image_psnr(images, images), metrics.PSNR_CAP_DB, rtol=1e-5
  )
  assert metrics.PSNR_CAP_DB == pytest.approx(100.0)


def test_ssim_of_identical_images_is_one():
  images = _smooth_images(1)
  np.testing.assert_allclose(
      metrics.per_image_ssim(images, images), 1.0, atol=1e-6
  )
  assert metrics.ssim_map(images, images).shape == images.shape[:3]


def test_ssim_matches_tensorflow():
  tf = pytest.importorskip("tensorflow")
  a = _smooth_images(2)
  noise = np.random.default_rng(3).normal(0.0, 0.1, a.shape)
  b = (a + noise).astype(np.float32)
  half = metrics.SSIM_WINDOW // 2
  interior = metrics.ssim_map(a, b)[:, half:-half, half:-half]
  expected = tf.image.ssim((a + 1) / 2, (b + 1) / 2, max_val=1.0)
  np.testing.assert_allclose(
      jnp.mean(interior, axis=(1, 2)), expected.numpy(), atol=1e-4
  )
  # At the borders the map is tf's VALID map of reflect-padded inputs.
  pad = ((0, 0), (half, half), (half, half), (0, 0))
  padded = [np.pad((x + 1) / 2, pad, mode="reflect") for x in (a, b)]
  np.testing.assert_allclose(
      metrics.per_image_ssim(a, b),
      tf.image.ssim(*padded, max_val=1.0).numpy(),
      atol=1e-4,
  )


def test_ssim_decreases_with_noise():
  a = _smooth_images(4, batch=1)
  noise = np.random.default_rng(5).normal(0.0, 1.0, a.shape)
  scores = [
      float(metrics.per_image_ssim(a, a + level * noise)[0])
      for level in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)
  ]
  assert all(x > y for x, y in zip(scores, scores[1:])), scores


def test_weighted_ssim_is_mean_of_map_over_hole():
  a = _smooth_images(6)
  b = _smooth_images(7)
  hole = np.zeros(a.shape[:3] + (1,), np.float32)
  hole[:, 8:20, 4:16] = 1.0
  expected = metrics.ssim_map(a, b)[:, 8:20, 4:16].mean(axis=(1, 2))
  np.testing.assert_allclose(
      metrics.per_image_ssim(a, b, hole), expected, rtol=1e-5
  )


def test_confusion_and_mean_iou_by_hand():
  truth = np.array([[[0, 0], [1, 1]]], np.int32)
  pred = np.array([[[0, 1], [1, 1]]], np.int32)
  confusion = metrics.confusion_matrix(truth, pred, num_classes=3)
  np.testing.assert_array_equal(confusion, [[1, 1, 0], [0, 2, 0], [0, 0, 0]])
  # IoU 1/2 for class 0, 2/3 for class 1; class 2 is absent and left out.
  np.testing.assert_allclose(
      metrics.mean_iou(confusion), (1 / 2 + 2 / 3) / 2, rtol=1e-6
  )


def test_confusion_respects_weights():
  truth = np.array([[[0, 0], [1, 1]]], np.int32)
  pred = np.array([[[0, 1], [1, 1]]], np.int32)
  weights = np.array([[[1.0, 0.0], [1.0, 0.5]]], np.float32)
  expected = [[1, 0], [0, 1.5]]
  for w in (weights, weights[..., None]):
    confusion = metrics.confusion_matrix(truth, pred, 2, w)
    np.testing.assert_array_equal(confusion, expected)
    np.testing.assert_allclose(metrics.mean_iou(confusion), 1.0)
  assert metrics.mean_iou(jnp.zeros((3, 3))) == 0.0


def test_boundary_band_of_centred_square_is_its_outer_ring():
  mask = np.zeros((1, 8, 8, 1), np.float32)
  mask[0, 2:6, 2:6] = 1.0
  expected = mask.copy()
  expected[0, 3:5, 3:5] = 0.0
  np.testing.assert_array_equal(metrics.boundary_band(mask, 1), expected)
  np.testing.assert_array_equal(metrics.boundary_band(mask, 2), mask)
  np.testing.assert_array_equal(metrics.boundary_band(mask, 0), 0 * mask)


def test_boundary_band_ignores_image_border():
  mask = np.zeros((1, 8, 8, 1), np.float32)
  mask[0, :, :4] = 1.0  # Left half: known region only to the right.
  expected = np.zeros_like(mask)
  expected[0, :, 3] = 1.0
  np.testing.assert_array_equal(metrics.boundary_band(mask, 1), expected)


def test_everything_works_under_jit():
  a = _smooth_images(8)
  b = _smooth_images(9)
  hole = np.zeros(a.shape[:3] + (1,), np.float32)
  hole[:, 8:24, 8:24] = 1.0
  for fn in (
      metrics.per_image_l1,
      metrics.per_image_l2,
      metrics.per_image_psnr,
      metrics.per_image_ssim,
  ):
    np.testing.assert_allclose(
        jax.jit(fn)(a, b, hole), fn(a, b, hole), rtol=1e-5
    )
  np.testing.assert_allclose(
      jax.jit(metrics.ssim_map)(a, b), metrics.ssim_map(a, b), atol=1e-6
  )
  band = jax.jit(metrics.boundary_band, static_argnums=1)(hole, 2)
  np.testing.assert_array_equal(band, metrics.boundary_band(hole, 2))
  labels = (a[..., 0] > 0).astype(np.int32)
  preds = (b[..., 0] > 0).astype(np.int32)

  @jax.jit
  def hole_miou(labels, preds, hole):
    return metrics.mean_iou(metrics.confusion_matrix(labels, preds, 2, hole))

  expected = metrics.mean_iou(metrics.confusion_matrix(labels, preds, 2, hole))
  np.testing.assert_allclose(hole_miou(labels, preds, hole), expected)
