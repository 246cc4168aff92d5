"""AlexNet's convolutional features in Flax, laid out as torchvision's.

LPIPS (Zhang et al. 2018), the perceptual distance SPG-Net's paper trains
SG-Net with, compares the outputs of AlexNet's five ReLUs. This is
torchvision's `alexnet().features` up to the fifth ReLU, each convolution
named after its index there (`features_0` is `features.0`), so that
`params_from_torch` maps torchvision's ImageNet weights one to one.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from spg_jax.pretrained import conversion

# torchvision's index, width, kernel, stride, padding, and whether a 3x3
# stride-2 max-pool comes before it.
_LAYERS = (
    (0, 64, 11, 4, 2, False),
    (3, 192, 5, 1, 2, True),
    (6, 384, 3, 1, 1, True),
    (8, 256, 3, 1, 1, False),
    (10, 256, 3, 1, 1, False),
)

# The torchvision state dict's arrays that the features use, and shapes.
TORCH_SHAPES = {
    **{
        f"features.{index}.weight": (width, in_width, kernel, kernel)
        for (index, width, kernel, *_), in_width in zip(
            _LAYERS, (3, 64, 192, 384, 256)
        )
    },
    **{f"features.{index}.bias": (width,) for index, width, *_ in _LAYERS},
}


class AlexNetFeatures(nn.Module):
  """AlexNet's features: the outputs of its five ReLUs (relu1 ... relu5).

  Input: images [N, H, W, 3], normalised as the weights expect. Each
  output is [N, h, w, C] at that layer's resolution, C = 64, 192, 384,
  256, 256.
  """

  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    taps = []
    for index, width, kernel, stride, padding, pool_before in _LAYERS:
      if pool_before:
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
      x = nn.Conv(
          width,
          (kernel, kernel),
          strides=(stride, stride),
          padding=[(padding, padding)] * 2,
          dtype=self.dtype,
          name=f"features_{index}",
      )(x)
      x = nn.relu(x)
      taps.append(x)
    return taps


def params_from_torch(state: conversion.StateDict, source: str) -> dict:
  """AlexNetFeatures' parameters from torchvision's AlexNet state dict.

  Raises:
    conversion.WeightsError: `state` (read from `source`) lacks arrays or
      holds them in other shapes.
  """
  return conversion.features_params(state, TORCH_SHAPES, source)
