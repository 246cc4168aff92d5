"""torchvision's ImageNet ResNet-50 as the segmenter's backbone.

The segmenter's backbone (`spg_jax.models.segmenter.ResNet`) names its
layers after torchvision's ResNet: `stem` is conv1 and bn1,
`stage{i}_block{j}` is layer{i}.{j}, whose conv1 ... conv3 are its convN and
bnN and whose `projection` is its downsample. The converter maps each
convolution's weights one to one and folds each batch normalisation, with
its fixed ImageNet statistics, into the `Affine` scale and bias that
follows the convolution: scale = weight / sqrt(running_var + eps), bias =
bias - running_mean * scale. The stem reads a fourth input channel, the
hole mask, whose weights start at 0, so the converted backbone computes
torchvision's network on the (normalised) image.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from spg_jax.models import segmenter
from spg_jax.pretrained import conversion

# ResNet-50's bottleneck blocks per stage and first stage's inner width.
STAGE_SIZES = (3, 4, 6, 3)
BASE_FEATURES = 64
# torchvision's BatchNorm2d epsilon.
_BATCH_NORM_EPSILON = 1e-5
# The segmenter's input: the image and the hole mask.
_INPUT_CHANNELS = 4


def backbone(output_stride: int = 16) -> segmenter.ResNet:
  """The segmenter's backbone at ResNet-50's sizes, as the converter fills
  it (`norm_groups` is unused by its 'affine' norms)."""
  return segmenter.ResNet(STAGE_SIZES, BASE_FEATURES, output_stride,
                          norm_groups=1, norm="affine")


def layout() -> dict:
  """The shapes of the backbone's parameters."""
  return jax.eval_shape(
      backbone().init, jax.random.key(0),
      jax.ShapeDtypeStruct((1, 64, 64, _INPUT_CHANNELS), jnp.float32),
  )["params"]


def _torch_prefixes(name: str) -> tuple[str, str]:
  """The torch names of a `ConvNorm`'s convolution and batch norm."""
  if name == "stem":
    return "conv1", "bn1"
  block, layer = name.rsplit("/", 1)
  stage, index = block[len("stage"):].split("_block")
  torch_block = f"layer{stage}.{index}"
  if layer == "projection":
    return f"{torch_block}.downsample.0", f"{torch_block}.downsample.1"
  return f"{torch_block}.{layer}", f"{torch_block}.bn{layer[len('conv'):]}"


@functools.cache
def _conv_norms() -> dict[str, tuple[int, ...]]:
  """Every `ConvNorm` of the backbone (path joined by '/') and its Flax
  kernel shape."""
  found = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(layout())[0]:
    keys = [entry.key for entry in path]
    if keys[-2:] == ["conv", "kernel"]:
      found["/".join(keys[:-2])] = leaf.shape
  return found


def torch_shapes() -> dict[str, tuple[int, ...]]:
  """The torchvision state dict's arrays the backbone uses, and shapes."""
  shapes = {}
  for name, (height, width, in_width, out_width) in _conv_norms().items():
    if name == "stem":
      in_width = 3  # the image's channels; the mask's are ours
    shapes.update(conversion.conv_and_batch_norm_shapes(
        *_torch_prefixes(name), (height, width, in_width, out_width)))
  return shapes


def params_from_torch(state: conversion.StateDict, source: str) -> dict:
  """The backbone's parameters from torchvision's ResNet-50 state dict.

  Raises:
    conversion.WeightsError: `state` (read from `source`) lacks arrays or
      holds them in other shapes.
  """
  conversion.check_arrays(state, torch_shapes(), source)
  params = {}
  for name in _conv_norms():
    conv, norm = _torch_prefixes(name)
    kernel = conversion.conv_kernel(state[f"{conv}.weight"])
    if name == "stem":
      mask_weights = np.zeros(kernel.shape[:2] + (1, kernel.shape[3]),
                              np.float32)
      kernel = np.concatenate([kernel, mask_weights], axis=2)
    scale, bias = conversion.folded_batch_norm(state, norm,
                                               _BATCH_NORM_EPSILON)
    conversion.insert(params, name.split("/"),
                      {"conv": {"kernel": kernel},
                       "norm": {"scale": scale, "bias": bias}})
  return params
