"""Image and segmentation metrics for evaluating inpainting.

Every function that looks at pixels is jit-able with static shapes and
returns device arrays, so evaluation never waits on the host; the scores of
a split's confusion matrix (`mean_iou`, `pixel_accuracy`) run on the host in
NumPy, on exact integer totals. Inputs follow the project's conventions:
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
import numpy as np

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

# Counts up to these are exact: float32 integers, and int32.
_MAX_EXACT_FLOAT32_COUNT = 2**24
_MAX_INT32_COUNT = 2**31 - 1


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
  """SSIM per image [B]: a mean of `ssim_map`, plain or weighted.

  Without weights, the mean is over the pixels whose window lies inside the
  image (at least SSIM_WINDOW // 2 from every border), as Wang et al.'s
  reference code, tf.image.ssim and scikit-image average, so the score is
  theirs; images need sides of at least SSIM_WINDOW pixels.

  With weights, usually the hole mask, every pixel counts with its weight,
  those near the border through the reflect padding, so no part of a hole
  is left out; the windows still see the known pixels around the hole, which
  is what makes a seam at the hole border count.

  Raises:
    ValueError: no weights and an image side shorter than SSIM_WINDOW.
  """
  values = ssim_map(a, b)
  if weights is not None:
    return _weighted_mean(values[..., None], weights)
  height, width = values.shape[1:]
  if min(height, width) < SSIM_WINDOW:
    raise ValueError(
        f"Images of {height}x{width} pixels have no pixel whose"
        f" {SSIM_WINDOW}x{SSIM_WINDOW} SSIM window fits inside; score images"
        f" of at least {SSIM_WINDOW}x{SSIM_WINDOW}, or pass weights."
    )
  half = SSIM_WINDOW // 2
  return jnp.mean(values[:, half : height - half, half : width - half], (1, 2))


# The per-image metrics that evaluations report: name -> (function of
# images in [-1, 1], whether it is scored on the hole alone).
IMAGE_METRICS = {
    "l1": (per_image_l1, False),
    "l2": (per_image_l2, False),
    "psnr": (per_image_psnr, False),
    "ssim": (per_image_ssim, False),
    "l1_hole": (per_image_l1, True),
    "l2_hole": (per_image_l2, True),
    "psnr_hole": (per_image_psnr, True),
    "ssim_hole": (per_image_ssim, True),
}


def confusion_matrix(
    labels_true: jax.Array,
    labels_pred: jax.Array,
    num_classes: int,
    where: jax.Array | None = None,
) -> jax.Array:
  """Exact pixel counts [num_classes, num_classes], int32.

  Entry [t, p] counts the pixels of true class t predicted as p. Labels are
  [B, H, W]; `where` ([B, H, W] or [B, H, W, 1], bool or 0/1) picks the
  pixels counted, all if None. Ids outside [0, num_classes) count nowhere.

  Each image is counted by a float32 matmul, exact while an image has at
  most 2**24 pixels, and the images' counts are summed as integers, exact
  while the batch has fewer than 2**31 pixels; both are checked.

  Raises:
    ValueError: an image or the batch has too many pixels to count exactly.
  """
  batch, height, width = labels_true.shape
  if height * width > _MAX_EXACT_FLOAT32_COUNT:
    raise ValueError(
        f"Images of {height}x{width} pixels are too large to count exactly"
        f" (at most {_MAX_EXACT_FLOAT32_COUNT} pixels an image); evaluate"
        " smaller images or crops."
    )
  if batch * height * width > _MAX_INT32_COUNT:
    raise ValueError(
        f"A batch of {batch} images of {height}x{width} pixels is too large"
        f" to count in int32 (at most {_MAX_INT32_COUNT} pixels); use a"
        " smaller evaluation batch."
    )
  true_hot = jax.nn.one_hot(labels_true, num_classes, dtype=jnp.float32)
  pred_hot = jax.nn.one_hot(labels_pred, num_classes, dtype=jnp.float32)
  if where is not None:
    true_hot *= jnp.reshape(where, labels_true.shape + (1,)) > 0
  per_image = jnp.einsum(
      "bhwt,bhwp->btp", true_hot, pred_hot, precision=jax.lax.Precision.HIGHEST
  )
  return jnp.sum(per_image.astype(jnp.int32), axis=0)


def _scored(
    confusion: np.ndarray, void_id: int | None
) -> tuple[np.ndarray, np.ndarray]:
  """Returns the confusion matrix less its void row, and which classes count.

  Pixels whose true class is void are left out; those of another class
  predicted as void stay in their row as errors, as in the Cityscapes
  benchmark.
  """
  confusion = np.array(confusion)
  scored = np.ones(len(confusion), bool)
  if void_id is not None:
    if not 0 <= void_id < len(confusion):
      raise ValueError(
          f"The void class id {void_id} is not one of the {len(confusion)}"
          " classes of the confusion matrix."
      )
    confusion[void_id] = 0
    scored[void_id] = False
  return confusion, scored


def mean_iou(confusion: np.ndarray, void_id: int | None = None) -> float:
  """Mean IoU over the scored classes present in the truth or the prediction.

  Runs on the host on the exact counts that `confusion_matrix` sums to, in
  float64. The void class, if any, is not scored, nor are the pixels whose
  true class it is. Classes absent from both truth and prediction (union 0)
  are left out rather than counted as 0 or 1. No scored pixel gives 0.
  """
  confusion, scored = _scored(confusion, void_id)
  intersection = np.diagonal(confusion)
  union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
  present = scored & (union > 0)
  if not present.any():
    return 0.0
  return float(np.mean(intersection[present] / union[present]))


def pixel_accuracy(confusion: np.ndarray, void_id: int | None = None) -> float:
  """The share of scored pixels labelled right, on the host in float64.

  Pixels whose true class is the void class are not scored. No scored pixel
  gives 0.
  """
  confusion, _ = _scored(confusion, void_id)
  total = confusion.sum()
  return float(np.trace(confusion) / total) if total else 0.0


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


def class_boundary_band(
    labels: jax.Array, mask: jax.Array, width: int
) -> jax.Array:
  """Hole pixels within `width` pixels of a boundary between true classes.

  A pixel is near a boundary when its (2*width+1)-square window holds a
  class other than its own, that is when the window's largest and smallest
  class ids differ; outside the image holds no class. Labels are int
  [B, H, W], the mask [B, H, W, 1] (1 = hole); returns the band [B, H, W, 1]
  in the mask's dtype. Scoring a fill's error on this band measures how well
  it draws the edges between regions, the thing labels are there to guide.
  """
  window = (1, 2 * width + 1, 2 * width + 1)
  values = jnp.asarray(labels, jnp.float32)
  largest = jax.lax.reduce_window(
      values, -jnp.inf, jax.lax.max, window, (1, 1, 1), "SAME"
  )
  smallest = jax.lax.reduce_window(
      values, jnp.inf, jax.lax.min, window, (1, 1, 1), "SAME"
  )
  return mask * (largest != smallest)[..., None].astype(mask.dtype)
