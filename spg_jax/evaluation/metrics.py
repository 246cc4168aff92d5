"""Image and segmentation metrics for evaluating inpainting, in pure jax.numpy.

Every function is jit-able with static shapes and returns device arrays, so
evaluation never waits on the host. Inputs follow the project's conventions:
images float32 in [-1, 1], NHWC RGB; masks and weight maps float32
[B, H, W, 1] (1 = hole); labels int32 [B, H, W].

Image metrics are computed on images mapped to [0, 1], the scale at which the
inpainting literature reports L1, L2, PSNR (data range 1) and SSIM. Each image
metric takes optional `weights`, usually the hole mask, to score only the
generated region. An image whose weights are all zero gets 0 error (PSNR
`PSNR_CAP_DB`); `has_weight` tells callers which images to leave out of an
average.
"""

import math

import jax
import jax.numpy as jnp

# MSE is floored here before PSNR is taken, so identical images give the
# finite `PSNR_CAP_DB` (100 dB) rather than infinity.
MSE_FLOOR = 1e-10
PSNR_CAP_DB = -10.0 * math.log10(MSE_FLOOR)

# SSIM constants of Wang et al. (2004), as in tf.image.ssim.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

_IMAGE_AXES = (1, 2, 3)


def _to_unit(x: jax.Array) -> jax.Array:
  """Maps an image from [-1, 1] to [0, 1]."""
  return (jnp.asarray(x, jnp.float32) + 1.0) / 2.0


def has_weight(weights: jax.Array) -> jax.Array:
  """Returns [B] bool: which images have any positive weight to average over."""
  return jnp.sum(weights, axis=_IMAGE_AXES) > 0


def _weighted_mean(values: jax.Array, weights: jax.Array | None) -> jax.Array:
  """Per-image mean of `values` [B, H, W, C] under `weights` [B, H, W, 1].

  Weights are shared by the C channels, so the denominator is sum(w) * C.
  Images with zero total weight get 0 instead of a division by zero.
  """
  if weights is None:
    return jnp.mean(values, axis=_IMAGE_AXES)
  weights = jnp.broadcast_to(weights, values.shape[:-1] + (1,))
  total = jnp.sum(values * weights, axis=_IMAGE_AXES)
  count = jnp.sum(weights, axis=_IMAGE_AXES) * values.shape[-1]
  safe_count = jnp.where(count > 0, count, 1.0)
  return jnp.where(count > 0, total / safe_count, 0.0)


def per_image_l1(
    a: jax.Array, b: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
  """Mean absolute error per image [B], in [0, 1] units."""
  return _weighted_mean(jnp.abs(_to_unit(a) - _to_unit(b)), weights)


def per_image_l2(
    a: jax.Array, b: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
  """Mean squared error per image [B], in [0, 1] units."""
  return _weighted_mean(jnp.square(_to_unit(a) - _to_unit(b)), weights)


def per_image_psnr(
    a: jax.Array, b: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
  """PSNR per image [B] in dB, data range 1, at most `PSNR_CAP_DB`."""
  mse = jnp.maximum(per_image_l2(a, b, weights), MSE_FLOOR)
  return -10.0 * jnp.log10(mse)


def _gaussian_blur(x: jax.Array) -> jax.Array:
  """Filters each channel of x [N, H, W, K] with the SSIM Gaussian window.

  The input is reflect-padded (mirrored without repeating the edge pixel) by
  half a window, so the output keeps the input's size. Pixels at least half a
  window from every border see no padding and equal a VALID filtering.
  """
  half = SSIM_WINDOW // 2
  coords = jnp.arange(SSIM_WINDOW, dtype=jnp.float32) - half
  taps = jnp.exp(-0.5 * jnp.square(coords / SSIM_SIGMA))
  taps /= jnp.sum(taps)
  channels = x.shape[-1]
  x = jnp.pad(x, ((0, 0), (half, half), (half, half), (0, 0)), mode="reflect")
  for kernel_shape in ((SSIM_WINDOW, 1, 1, 1), (1, SSIM_WINDOW, 1, 1)):
    kernel = jnp.tile(taps.reshape(kernel_shape), (1, 1, 1, channels))
    x = jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(1, 1),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=channels,
        precision=jax.lax.Precision.HIGHEST,
    )
  return x


def ssim_map(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-pixel SSIM [B, H, W], averaged over channels.

  Local statistics use an 11x11 Gaussian window (sigma 1.5) over inputs that
  are reflect-padded at the borders, so every pixel, holes included, has a
  value. Away from the borders the map equals tf.image.ssim's VALID map.
  """
  x, y = _to_unit(a), _to_unit(b)
  stats = _gaussian_blur(jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1))
  mu_x, mu_y, e_xx, e_yy, e_xy = jnp.split(stats, 5, axis=-1)
  c1, c2 = SSIM_K1**2, SSIM_K2**2
  luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
  contrast_structure = (2 * (e_xy - mu_x * mu_y) + c2) / (
      e_xx + e_yy - mu_x**2 - mu_y**2 + c2
  )
  return jnp.mean(luminance * contrast_structure, axis=-1)


def per_image_ssim(
    a: jax.Array, b: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
  """SSIM per image [B]: the mean of `ssim_map`, or its weighted mean.

  With the hole mask as weights, the windows still see the known pixels
  around the hole, which is what makes a seam at the hole border count.
  """
  return _weighted_mean(ssim_map(a, b)[..., None], weights)


def confusion_matrix(
    labels_true: jax.Array,
    labels_pred: jax.Array,
    num_classes: int,
    weights: jax.Array | None = None,
) -> jax.Array:
  """Weighted pixel counts [num_classes, num_classes], float32.

  Entry [t, p] counts pixels of true class t predicted as p. Labels are
  [B, H, W]; weights are [B, H, W] or [B, H, W, 1]. Ids outside
  [0, num_classes) count nowhere. Counts are exact up to 2**24 per entry.
  """
  true_hot = jax.nn.one_hot(labels_true, num_classes, dtype=jnp.float32)
  pred_hot = jax.nn.one_hot(labels_pred, num_classes, dtype=jnp.float32)
  if weights is not None:
    pred_hot *= jnp.reshape(weights, labels_pred.shape + (1,))
  return jnp.einsum(
      "bhwt,bhwp->tp", true_hot, pred_hot, precision=jax.lax.Precision.HIGHEST
  )


def mean_iou(confusion: jax.Array) -> jax.Array:
  """Mean IoU over the classes present in the truth or the prediction.

  Classes absent from both (union 0) are left out rather than counted as 0
  or 1. An all-zero matrix gives 0.
  """
  intersection = jnp.diagonal(confusion)
  union = jnp.sum(confusion, axis=0) + jnp.sum(confusion, axis=1) - intersection
  present = union > 0
  iou = intersection / jnp.where(present, union, 1.0)
  return jnp.sum(iou * present) / jnp.maximum(jnp.sum(present), 1)


def boundary_band(mask: jax.Array, width: int) -> jax.Array:
  """Hole pixels within `width` pixels of the known region [B, H, W, 1].

  Distance is the chessboard distance (a (2*width+1)-square window). Outside
  the image counts as unknown, so a hole touching the image border has no band
  along that border. Scoring errors on this band measures how well the fill
  blends into its surroundings.
  """
  window = (1, 2 * width + 1, 2 * width + 1, 1)
  near_known = jax.lax.reduce_window(
      1.0 - mask, -jnp.inf, jax.lax.max, window, (1, 1, 1, 1), "SAME"
  )
  return mask * near_known
