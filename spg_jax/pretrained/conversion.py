"""Turning a PyTorch state dict into a Flax parameter tree, checked.

PyTorch keeps a convolution's kernel as [out, in, height, width]; Flax as
[height, width, in, out]. Every converter here takes the arrays it needs by
their published names and shapes, and a missing or mis-shaped array is
reported with the file it came from and every array at fault, before any
is used.
"""

from collections.abc import Mapping, Sequence

import numpy as np

StateDict = Mapping[str, np.ndarray]


class WeightsError(ValueError):
  """A file of weights lacks arrays, or holds them in the wrong shapes."""


def check_arrays(
    state: StateDict,
    expected_shapes: Mapping[str, Sequence[int]],
    source: str,
) -> None:
  """Refuses `state` unless it holds every expected array, in its shape.

  Args:
    state: the file's arrays by name.
    expected_shapes: the arrays a network needs, by their published names.
    source: the file, for the message.

  Raises:
    WeightsError: naming the source, the missing arrays and the arrays
      whose shapes differ (with both shapes).
  """
  missing = [name for name in expected_shapes if name not in state]
  misshaped = [
      f"{name}: {tuple(state[name].shape)} in the file,"
      f" {tuple(shape)} expected"
      for name, shape in expected_shapes.items()
      if name in state and tuple(state[name].shape) != tuple(shape)
  ]
  if missing or misshaped:
    problems = []
    if missing:
      problems.append(f"missing {missing}")
    if misshaped:
      problems.append("mis-shaped " + "; ".join(misshaped))
    raise WeightsError(
        f"{source} is not the expected weights: {', '.join(problems)}. Is it"
        " the right file, downloaded whole?"
    )


def conv_kernel(weight: np.ndarray) -> np.ndarray:
  """A PyTorch convolution weight [O, I, H, W] as a Flax kernel [H, W, I, O]."""
  return np.ascontiguousarray(np.transpose(weight, (2, 3, 1, 0)),
                              dtype=np.float32)


def conv(
    state: StateDict, prefix: str, bias: bool = True
) -> dict[str, np.ndarray]:
  """The Flax parameters of the convolution `prefix` in `state`."""
  params = {"kernel": conv_kernel(state[f"{prefix}.weight"])}
  if bias:
    params["bias"] = np.asarray(state[f"{prefix}.bias"], np.float32)
  return params


# The arrays of a PyTorch BatchNorm2d that a converter reads.
BATCH_NORM_ARRAYS = ("weight", "bias", "running_mean", "running_var")


def conv_and_batch_norm_shapes(
    conv: str, norm: str, kernel_shape: Sequence[int]
) -> dict[str, tuple[int, ...]]:
  """The PyTorch shapes of convolution `conv`, without bias, and of the
  batch normalisation `norm` after it, for a Flax kernel of
  `kernel_shape` [H, W, I, O]."""
  height, width, in_width, out_width = kernel_shape
  return {
      f"{conv}.weight": (out_width, in_width, height, width),
      **{f"{norm}.{leaf}": (out_width,) for leaf in BATCH_NORM_ARRAYS},
  }


def folded_batch_norm(
    state: StateDict, prefix: str, epsilon: float
) -> tuple[np.ndarray, np.ndarray]:
  """Batch normalisation `prefix` with its fixed statistics as one
  per-channel scale and bias (float32, computed in float64):
  scale = weight / sqrt(running_var + epsilon),
  bias = bias - running_mean * scale."""
  array = lambda leaf: np.asarray(state[f"{prefix}.{leaf}"], np.float64)
  scale = array("weight") / np.sqrt(array("running_var") + epsilon)
  bias = array("bias") - array("running_mean") * scale
  return scale.astype(np.float32), bias.astype(np.float32)


def features_params(
    state: StateDict,
    expected_shapes: Mapping[str, Sequence[int]],
    source: str,
) -> dict[str, dict[str, np.ndarray]]:
  """The Flax parameters of a torchvision `features` stack (AlexNet's,
  VGG's): each convolution `features.N` of `expected_shapes` becomes
  `features_N`.

  Raises:
    WeightsError: as `check_arrays`.
  """
  check_arrays(state, expected_shapes, source)
  prefixes = sorted({name.rsplit(".", 1)[0] for name in expected_shapes},
                    key=lambda prefix: int(prefix.split(".")[1]))
  return {prefix.replace(".", "_"): conv(state, prefix) for prefix in prefixes}


def insert(tree: dict, path: Sequence[str], value: dict) -> None:
  """Sets `tree[path[0]][path[1]]...` to `value`, making the dicts between."""
  node = tree
  for key in path[:-1]:
    node = node.setdefault(key, {})
  node[path[-1]] = value
