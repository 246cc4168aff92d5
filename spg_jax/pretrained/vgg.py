"""VGG19's convolutional features in Flax, laid out as torchvision's.

pix2pixHD-style perceptual losses compare VGG19's activations of two images
at a few ReLUs (relu1_1 ... relu5_1 by default). This is torchvision's
`vgg19().features`, each convolution named after its index there
(`features_28` is `features.28`), so `params_from_torch` maps torchvision's
ImageNet weights one to one. A tap is named `relu{block}_{layer}`, both
counted from 1 as in the VGG paper: relu3_1 is the first ReLU after the
second max-pool.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from spg_jax.pretrained import conversion

# Configuration E of the VGG paper: each block's width and its number of
# 3x3 convolutions; a 2x2 max-pool ends every block.
_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))



def _layers() -> list[tuple[str, int, int, int]]:
  """(tap name, torchvision index, in width, width) of every convolution."""
  layers = []
  index, in_width = 0, 3
  for block, (width, count) in enumerate(_BLOCKS, start=1):
    for layer in range(1, count + 1):
      layers.append((f"relu{block}_{layer}", index, in_width, width))
      index += 2  # the convolution and its ReLU
      in_width = width
    index += 1  # the max-pool
  return layers


_LAYERS = _layers()
TAPS = tuple(name for name, *_ in _LAYERS)

# The torchvision state dict's arrays that the features use, and shapes.
TORCH_SHAPES = {
    **{
        f"features.{index}.weight": (width, in_width, 3, 3)
        for _, index, in_width, width in _LAYERS
    },
    **{f"features.{index}.bias": (width,) for _, index, _, width in _LAYERS},
}


def check_taps(taps: Sequence[str]) -> None:
  """Refuses tap names that VGG19 does not have, or an empty list."""
  unknown = [tap for tap in taps if tap not in TAPS]
  if unknown or not taps:
    raise ValueError(
        f"VGG19 taps {list(taps)}: {'unknown ' + str(unknown) if unknown else 'none given'}."
        f" Choose from {', '.join(TAPS)}."
    )


class VGG19Features(nn.Module):
  """VGG19's ReLU outputs at `taps`, in that order.

  Input: images [N, H, W, 3], normalised as the weights expect
  (`imagenet.normalise`). Only the layers up to the deepest tap run.
  """

  taps: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1",
                         "relu5_1")
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    check_taps(self.taps)
    deepest = max(TAPS.index(tap) for tap in self.taps)
    outputs = {}
    for name, index, _, width in _LAYERS[: deepest + 1]:
      if name.endswith("_1") and name != "relu1_1":
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      x = nn.Conv(width, (3, 3), padding=[(1, 1)] * 2, dtype=self.dtype,
                  name=f"features_{index}")(x)
      x = nn.relu(x)
      outputs[name] = x
    return [outputs[tap] for tap in self.taps]


def params_from_torch(state: conversion.StateDict, source: str) -> dict:
  """VGG19Features' parameters from torchvision's VGG19 state dict.

  Raises:
    conversion.WeightsError: `state` (read from `source`) lacks arrays or
      holds them in other shapes.
  """
  return conversion.features_params(state, TORCH_SHAPES, source)
