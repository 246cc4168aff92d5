"""The Inception-v3 of FID, in Flax: pool3 features as pytorch-fid computes them.

FID (Heusel et al. 2017) compares the statistics of 2048-wide "pool3"
features of real and generated images, taken from TensorFlow's Inception-v3
graph of 2015-12-05. pytorch-fid ships those weights as a PyTorch file in
torchvision's Inception-v3 names, with four blocks whose pooling differs
from torchvision's: average pools that leave the zero padding out of the
count, and a max pool in the last block. This network is that one, with
pytorch-fid's input handling: images in [0, 1] resized bilinearly to
299x299 (half-pixel centres, no antialiasing), then scaled to [-1, 1].

Each of Inception's convolutions is followed by batch normalisation with
fixed statistics (eps 0.001) and a ReLU; the converter folds each
normalisation into its convolution's kernel and a bias, so the network
holds only convolutions.
"""

from collections.abc import Sequence
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from spg_jax.pretrained import conversion

# The input size the network was trained at, and the feature width.
INPUT_SIZE = 299
FEATURES = 2048
_BATCH_NORM_EPSILON = 0.001

Pair = tuple[int, int]


def _pair(value: int | Pair) -> Pair:
  return (value, value) if isinstance(value, int) else value


class BasicConv(nn.Module):
  """A convolution with its batch normalisation folded in, then ReLU."""

  features: int
  kernel: int | Pair
  stride: int = 1
  padding: int | Pair = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pad_h, pad_w = _pair(self.padding)
    x = nn.Conv(self.features, _pair(self.kernel), strides=self.stride,
                padding=[(pad_h, pad_h), (pad_w, pad_w)], name="conv")(x)
    return nn.relu(x)


def _avg_pool_without_padding(x: jax.Array) -> jax.Array:
  """3x3 stride-1 average pool that averages only the pixels inside."""
  return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_3x3(x: jax.Array, stride: int, padding: str) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=padding)


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch5x5 = BasicConv(48, 1, name="branch5x5_1")(x)
    double = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    double = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(double)
    return jnp.concatenate([
        BasicConv(64, 1, name="branch1x1")(x),
        BasicConv(64, 5, padding=2, name="branch5x5_2")(branch5x5),
        BasicConv(96, 3, padding=1, name="branch3x3dbl_3")(double),
        BasicConv(self.pool_features, 1, name="branch_pool")(
            _avg_pool_without_padding(x)),
    ], axis=-1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    double = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    double = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(double)
    return jnp.concatenate([
        BasicConv(384, 3, stride=2, name="branch3x3")(x),
        BasicConv(96, 3, stride=2, name="branch3x3dbl_3")(double),
        _max_pool_3x3(x, 2, "VALID"),
    ], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    width = self.channels_7x7
    single = BasicConv(width, 1, name="branch7x7_1")(x)
    single = BasicConv(width, (1, 7), padding=(0, 3), name="branch7x7_2")(
        single)
    double = BasicConv(width, 1, name="branch7x7dbl_1")(x)
    for index, (kernel, padding) in enumerate(
        (((7, 1), (3, 0)), ((1, 7), (0, 3)), ((7, 1), (3, 0))), start=2):
      double = BasicConv(width, kernel, padding=padding,
                         name=f"branch7x7dbl_{index}")(double)
    return jnp.concatenate([
        BasicConv(192, 1, name="branch1x1")(x),
        BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(single),
        BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(double),
        BasicConv(192, 1, name="branch_pool")(_avg_pool_without_padding(x)),
    ], axis=-1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    single = BasicConv(192, 1, name="branch3x3_1")(x)
    seven = BasicConv(192, 1, name="branch7x7x3_1")(x)
    seven = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(seven)
    seven = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(seven)
    return jnp.concatenate([
        BasicConv(320, 3, stride=2, name="branch3x3_2")(single),
        BasicConv(192, 3, stride=2, name="branch7x7x3_4")(seven),
        _max_pool_3x3(x, 2, "VALID"),
    ], axis=-1)


class InceptionE(nn.Module):
  """The last blocks; the first pools by average, the second by maximum."""

  max_pool: bool

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    def split(y: jax.Array, prefix: str) -> jax.Array:
      return jnp.concatenate([
          BasicConv(384, (1, 3), padding=(0, 1), name=f"{prefix}a")(y),
          BasicConv(384, (3, 1), padding=(1, 0), name=f"{prefix}b")(y),
      ], axis=-1)

    double = BasicConv(448, 1, name="branch3x3dbl_1")(x)
    double = BasicConv(384, 3, padding=1, name="branch3x3dbl_2")(double)
    pooled = (_max_pool_3x3(x, 1, "SAME") if self.max_pool
              else _avg_pool_without_padding(x))
    return jnp.concatenate([
        BasicConv(320, 1, name="branch1x1")(x),
        split(BasicConv(384, 1, name="branch3x3_1")(x), "branch3x3_2"),
        split(double, "branch3x3dbl_3"),
        BasicConv(192, 1, name="branch_pool")(pooled),
    ], axis=-1)


def resize_for_inception(images: jax.Array) -> jax.Array:
  """Images [N, H, W, 3] resized to 299x299 as torch's bilinear
  interpolation does (half-pixel centres, no antialiasing)."""
  return jax.image.resize(
      images, (images.shape[0], INPUT_SIZE, INPUT_SIZE, images.shape[-1]),
      method="linear", antialias=False)


class InceptionV3FID(nn.Module):
  """pool3 features [N, 2048] of images [N, H, W, 3] in [0, 1]."""

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = resize_for_inception(images.astype(jnp.float32)) * 2.0 - 1.0
    x = BasicConv(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, 3, name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3(x, 2, "VALID")
    x = BasicConv(80, 1, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3(x, 2, "VALID")
    for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64),
                                ("Mixed_5d", 64)):
      x = InceptionA(pool_features, name=name)(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, width in (("Mixed_6b", 128), ("Mixed_6c", 160),
                        ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(width, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(max_pool=False, name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


@functools.cache
def _conv_prefixes() -> dict[str, tuple[int, ...]]:
  """Every folded convolution's torch prefix and its Flax kernel shape."""
  shapes = jax.eval_shape(
      InceptionV3FID().init, jax.random.key(0),
      jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
  prefixes = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
    keys = [entry.key for entry in path]
    if keys[-1] == "kernel":
      # params / module ... / conv / kernel
      prefixes[".".join(keys[1:-2])] = leaf.shape
  return prefixes


def torch_shapes() -> dict[str, tuple[int, ...]]:
  """The pytorch-fid file's arrays that the network uses, and shapes."""
  shapes = {}
  for prefix, kernel_shape in _conv_prefixes().items():
    shapes.update(conversion.conv_and_batch_norm_shapes(
        f"{prefix}.conv", f"{prefix}.bn", kernel_shape))
  return shapes


def params_from_torch(state: conversion.StateDict, source: str) -> dict:
  """InceptionV3FID's parameters from pytorch-fid's state dict.

  Raises:
    conversion.WeightsError: `state` (read from `source`) lacks arrays or
      holds them in other shapes.
  """
  conversion.check_arrays(state, torch_shapes(), source)
  params = {}
  for prefix in _conv_prefixes():
    scale, bias = conversion.folded_batch_norm(state, f"{prefix}.bn",
                                               _BATCH_NORM_EPSILON)
    kernel = conversion.conv_kernel(state[f"{prefix}.conv.weight"]) * scale
    conversion.insert(params, [*prefix.split("."), "conv"],
                      {"kernel": kernel, "bias": bias})
  return params


def frechet_distance(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> float:
  """The Fréchet distance of two Gaussians, each (mean, covariance).

  |m1 - m2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)); the trace of the square root
  is the sum of the square roots of the eigenvalues of C1^(1/2) C2 C1^(1/2),
  which is symmetric, so it needs only NumPy's `eigh`.
  """
  (mean1, cov1), (mean2, cov2) = first, second
  values, vectors = np.linalg.eigh(cov1)
  root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
  inner = np.linalg.eigvalsh(root1 @ cov2 @ root1)
  trace_root = np.sum(np.sqrt(np.clip(inner, 0, None)))
  return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2)
               - 2.0 * trace_root)


def statistics(features: Sequence[np.ndarray] | np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
  """The mean and covariance (float64) of features [N, 2048], N >= 2."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or len(features) < 2:
    raise ValueError(
        f"FID needs features of at least 2 images, got shape {features.shape}.")
  return features.mean(axis=0), np.cov(features, rowvar=False)
