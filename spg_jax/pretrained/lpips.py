"""LPIPS, the learned perceptual distance of Zhang et al. (2018), in JAX.

Version 0.1 on AlexNet, as the `lpips` package computes it with its default
settings: both images, in [-1, 1], are shifted and scaled per channel as
the package's ScalingLayer does, run through AlexNet's features; each of
the five ReLU outputs is normalised to unit length over its channels at
every position, the two images' normalised features are subtracted and
squared, weighted per channel by a learned non-negative 1x1 convolution
(the "linear heads", `lin0` ... `lin4`), averaged over the positions, and
the five layers' averages are summed: one distance per image pair.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from spg_jax.pretrained import alexnet
from spg_jax.pretrained import conversion

# The package's ScalingLayer: (x - shift) / scale, per RGB channel.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# normalize_tensor's epsilon, added to each feature vector's length.
_NORM_EPSILON = 1e-10
# The smallest height and width AlexNet's features reach relu5 from (its
# stride-4 convolution and two 3x3 stride-2 max-pools leave 1 pixel).
MIN_SIZE = 31

# The heads file's arrays (lpips/weights/v0.1/alex.pth) and their shapes.
HEAD_TORCH_SHAPES = {
    f"lin{index}.model.1.weight": (1, width, 1, 1)
    for index, width in enumerate((64, 192, 384, 256, 256))
}


def _unit_length(features: jax.Array) -> jax.Array:
  """`features` divided by their length over channels (+ epsilon)."""
  length = jnp.sqrt(jnp.sum(jnp.square(features), axis=-1, keepdims=True))
  return features / (length + _NORM_EPSILON)


class LPIPS(nn.Module):
  """The LPIPS distance between two batches of images [N, H, W, 3] in [-1, 1].

  Returns [N]: the distance of each pair (0 for identical images).
  """

  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, others: jax.Array) -> jax.Array:
    both = jnp.concatenate([images, others], axis=0)
    both = (both - jnp.asarray(SHIFT)) / jnp.asarray(SCALE)
    taps = alexnet.AlexNetFeatures(dtype=self.dtype, name="net")(both)
    distance = jnp.zeros(images.shape[0], jnp.float32)
    for index, tap in enumerate(taps):
      first, second = jnp.split(tap.astype(jnp.float32), 2, axis=0)
      difference = jnp.square(_unit_length(first) - _unit_length(second))
      weighted = nn.Conv(
          1, (1, 1), use_bias=False, dtype=self.dtype, name=f"lin{index}"
      )(difference)
      distance += jnp.mean(weighted.astype(jnp.float32), axis=(1, 2, 3))
    return distance


def params_from_torch(
    alexnet_state: conversion.StateDict,
    heads_state: conversion.StateDict,
    alexnet_source: str,
    heads_source: str,
) -> dict:
  """LPIPS' parameters from torchvision's AlexNet and the package's heads.

  Raises:
    conversion.WeightsError: either state dict lacks arrays or holds them
      in other shapes (the message names its source).
  """
  params = {"net": alexnet.params_from_torch(alexnet_state, alexnet_source)}
  conversion.check_arrays(heads_state, HEAD_TORCH_SHAPES, heads_source)
  for index in range(len(HEAD_TORCH_SHAPES)):
    params[f"lin{index}"] = conversion.conv(
        heads_state, f"lin{index}.model.1", bias=False
    )
  return params
