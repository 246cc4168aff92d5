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


def _smooth_images(
    seed: int, batch: int = 2, size: int = 32, width: int | None = None
) -> np.ndarray:
  """Random smooth RGB images in [-0.8, 0.8]: upsampled low-res noise.

  They are size x size, or size x width if a width is given.
  """
  width = width or size
  rng = np.random.default_rng(seed)
  low = rng.uniform(-0.8, 0.8, (batch, size // 4, width // 4, 3))
  return np.asarray(
      jax.image.resize(low, (batch, size, width, 3), "linear"), np.float32
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
  expected = tf.image.ssim((a + 1) / 2, (b + 1) / 2, max_val=1.0)
  np.testing.assert_allclose(
      metrics.per_image_ssim(a, b), expected.numpy(), atol=1e-4
  )
  # At the borders the map is tf's VALID map of reflect-padded inputs.
  pad = ((0, 0), (half, half), (half, half), (0, 0))
  padded = [np.pad((x + 1) / 2, pad, mode="reflect") for x in (a, b)]
  np.testing.assert_allclose(
      jnp.mean(metrics.ssim_map(a, b), axis=(1, 2)),
      tf.image.ssim(*padded, max_val=1.0).numpy(),
      atol=1e-4,
  )


def _pairs_near_and_far(height: int, width: int) -> tuple[np.ndarray, ...]:
  """Image pairs [4, height, width, 3] in [-1, 1]: noisier pair by pair."""
  a = _smooth_images(10, batch=4, size=height, width=width)
  noise = np.random.default_rng(11).normal(0.0, 1.0, a.shape)
  levels = np.array([0.02, 0.1, 0.4, 1.0], np.float32)[:, None, None, None]
  b = np.clip(a + levels * noise, -1.0, 1.0).astype(np.float32)
  return a, b


@pytest.mark.parametrize("height, width", [(40, 56), (57, 23)])
def test_psnr_and_ssim_match_scikit_image(height, width):
  skimage_metrics = pytest.importorskip("skimage.metrics")
  a, b = _pairs_near_and_far(height, width)
  unit_a, unit_b = (np.float64(x + 1) / 2 for x in (a, b))
  psnr = [
      skimage_metrics.peak_signal_noise_ratio(x, y, data_range=1)
      for x, y in zip(unit_a, unit_b)
  ]
  ssim = [
      skimage_metrics.structural_similarity(
          x, y, data_range=1, gaussian_weights=True, sigma=metrics.SSIM_SIGMA,
          use_sample_covariance=False, channel_axis=-1,
      )
      for x, y in zip(unit_a, unit_b)
  ]
  np.testing.assert_allclose(metrics.per_image_psnr(a, b), psnr, atol=1e-4)
  np.testing.assert_allclose(metrics.per_image_ssim(a, b), ssim, atol=1e-4)


def test_ssim_needs_a_window_inside_the_image_unless_weighted():
  a = _smooth_images(12, batch=1, size=32, width=8)
  with pytest.raises(ValueError, match="Images of 32x8 pixels have no pixel"):
    metrics.per_image_ssim(a, a)
  hole = np.ones(a.shape[:3] + (1,), np.float32)
  np.testing.assert_allclose(metrics.per_image_ssim(a, a, hole), 1.0, atol=1e-6)


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


def test_confusion_counts_only_where_asked():
  truth = np.array([[[0, 0], [1, 1]], [[1, 0], [0, 1]]], np.int32)
  pred = np.array([[[0, 1], [1, 1]], [[0, 0], [1, 1]]], np.int32)
  where = np.array([[[1, 0], [1, 1]], [[1, 1], [0, 0]]], np.float32)
  expected = [[2, 0], [1, 2]]
  for w in (where, where[..., None], where > 0):
    confusion = metrics.confusion_matrix(truth, pred, 2, w)
    assert confusion.dtype == jnp.int32
    np.testing.assert_array_equal(confusion, expected)
  assert metrics.mean_iou(np.zeros((3, 3), np.int64)) == 0.0


def test_a_confusion_cell_past_2_24_is_counted_exactly():
  """float32 holds every integer up to 2**24 but not 2**24 + 1."""
  # 97 * 257 * 673 = 2**24 + 1 pixels of the one class, predicted right.
  labels = jnp.zeros([97, 257, 673], jnp.int32)
  confusion = metrics.confusion_matrix(labels, labels, 1)
  assert int(confusion[0, 0]) == 2**24 + 1


def test_confusion_refuses_batches_it_cannot_count_exactly():
  too_tall = jax.ShapeDtypeStruct([1, 2**12 + 1, 2**12], jnp.int32)
  with pytest.raises(ValueError, match="too large to count exactly"):
    jax.eval_shape(
        lambda x: metrics.confusion_matrix(x, x, 2), too_tall
    )
  too_many = jax.ShapeDtypeStruct([129, 2**12, 2**12], jnp.int32)
  with pytest.raises(ValueError, match="too large to count in int32"):
    jax.eval_shape(
        lambda x: metrics.confusion_matrix(x, x, 2), too_many
    )


# Class 0 is void. Rows: true class; columns: predicted class.
_CONFUSION_WITH_VOID = np.array([[5, 1, 2], [1, 3, 0], [0, 1, 4]], np.int64)


def test_void_truth_is_left_out_of_mean_iou_and_pixel_accuracy():
  # Class 1: 3 right, 1 predicted void (an error), 1 of class 2 taken for
  # it: IoU 3/5. Class 2: 4 right, 1 missed: IoU 4/5. Void's row and IoU
  # do not count.
  assert metrics.mean_iou(_CONFUSION_WITH_VOID, void_id=0) == pytest.approx(
      (3 / 5 + 4 / 5) / 2, rel=1e-15
  )
  assert metrics.pixel_accuracy(
      _CONFUSION_WITH_VOID, void_id=0
  ) == pytest.approx(7 / 9, rel=1e-15)
  # Whatever is predicted on void pixels changes nothing.
  moved = _CONFUSION_WITH_VOID.copy()
  moved[0] = [0, 8, 0]
  assert metrics.mean_iou(moved, 0) == metrics.mean_iou(_CONFUSION_WITH_VOID, 0)
  assert metrics.pixel_accuracy(moved, 0) == metrics.pixel_accuracy(
      _CONFUSION_WITH_VOID, 0
  )
  # Without a void class, void is scored like any class.
  assert metrics.mean_iou(_CONFUSION_WITH_VOID) == pytest.approx(
      (5 / 9 + 3 / 6 + 4 / 7) / 3, rel=1e-15
  )
  assert metrics.pixel_accuracy(_CONFUSION_WITH_VOID) == pytest.approx(
      12 / 17, rel=1e-15
  )


def test_scores_of_nothing_scored_are_zero():
  only_void = np.zeros((3, 3), np.int64)
  only_void[0] = [4, 1, 1]
  assert metrics.mean_iou(only_void, void_id=0) == 0.0
  assert metrics.pixel_accuracy(only_void, void_id=0) == 0.0
  assert metrics.pixel_accuracy(np.zeros((2, 2), np.int64)) == 0.0


def test_a_void_id_outside_the_matrix_is_refused():
  with pytest.raises(ValueError, match="void class id 3 is not one of the 3"):
    metrics.mean_iou(_CONFUSION_WITH_VOID, void_id=3)


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


def test_class_boundary_band_by_hand():
  # 5x7: class 1 in the right three columns, one pixel of class 2 at the
  # bottom left; the hole is rows 1-4, columns 1-5.
  labels = np.zeros((1, 5, 7), np.int32)
  labels[0, :, 4:] = 1
  labels[0, 4, 0] = 2
  mask = np.zeros((1, 5, 7, 1), np.float32)
  mask[0, 1:, 1:6] = 1.0
  expected = np.zeros_like(mask)
  expected[0, 1:, 3:5] = 1.0  # Either side of the 0|1 edge.
  expected[0, 3:, 1] = 1.0  # Beside the class-2 pixel (itself known).
  np.testing.assert_array_equal(
      metrics.class_boundary_band(labels, mask, 1), expected
  )
  # A 5x5 window: two columns either side of the edge, and two rows and
  # columns from the class-2 pixel; the image border is no class.
  expected = np.zeros_like(mask)
  expected[0, 1:, 2:6] = 1.0
  expected[0, 2:, 1] = 1.0
  np.testing.assert_array_equal(
      metrics.class_boundary_band(labels, mask, 2), expected
  )
  np.testing.assert_array_equal(
      metrics.class_boundary_band(labels, mask, 0), 0 * mask
  )


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
  band = jax.jit(metrics.class_boundary_band, static_argnums=2)
  np.testing.assert_array_equal(
      band(labels, hole, 2), metrics.class_boundary_band(labels, hole, 2)
  )
  preds = (b[..., 0] > 0).astype(np.int32)
  confusion = jax.jit(metrics.confusion_matrix, static_argnums=2)
  np.testing.assert_array_equal(
      confusion(labels, preds, 2, hole),
      metrics.confusion_matrix(labels, preds, 2, hole),
  )
