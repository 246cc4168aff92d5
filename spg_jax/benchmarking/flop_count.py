"""Counts the convolution and matmul FLOPs of a traced program, for MFU.

Model FLOPs utilisation divides the model's arithmetic per second by the
hardware's peak, and by convention the arithmetic is that of its
convolutions and matrix products: the work the peak describes. XLA's cost
analysis of the compiled program cannot supply it on GPUs, where
convolutions and matmuls become calls into cuDNN and cuBLAS that the
analysis barely counts (jax-ml/jax#22249; BENCHMARKS.md has an H100
example). So the count here is taken from the program's jaxpr,
before any backend has seen it, and is the same on every device:

* 2 FLOPs per multiply-add of every `conv_general_dilated` and
  `dot_general`, as XLA's analysis counts them on a CPU;
* a convolution's kernel taps that land on padding, or on the zeros between
  the elements of a dilated input (the gradients of strided convolutions),
  are not counted, so a gradient costs what its forward pass does;
* the body of a `shard_map` counts once per device of its manual axes, so
  the total is the whole mesh's;
* elementwise work, normalisation and reductions are not counted: they are
  about 2% of XLA's count for the train step and run on no matmul unit, and
  PyTorch's `torch.utils.flop_counter`, which the twin benchmark uses, leaves
  them out too.
"""

from collections.abc import Callable, Sequence
import math
from typing import Any

import jax
from jax.extend import core
import numpy as np

# Primitives whose sub-programs run a number of times (loops) or not at all
# (branches) that the shapes do not tell: refused rather than miscounted.
_UNCOUNTABLE_PRIMITIVES = frozenset({"scan", "while", "cond"})


def count_flops(function: Callable[..., Any], *args: Any) -> float:
  """FLOPs of one call of `function(*args)` on all devices it runs on.

  Work whose results nothing uses is not counted, as XLA removes it (a
  `jax.vjp` computes the primal outputs, for example, even when only the
  gradients are returned).

  Args:
    function: a function of JAX arrays, jitted or not.
    *args: arrays or `jax.ShapeDtypeStruct`s; only their shapes are used.

  Raises:
    NotImplementedError: the program has a loop or a branch.
  """
  jaxpr = jax.make_jaxpr(function)(*args).jaxpr
  return _jaxpr_flops(jaxpr, [True] * len(jaxpr.outvars))


def _jaxpr_flops(jaxpr: core.Jaxpr, outputs_used: Sequence[bool]) -> float:
  """FLOPs of the equations of `jaxpr` that feed its used outputs."""
  needed = {
      var
      for var, used in zip(jaxpr.outvars, outputs_used)
      if used and isinstance(var, core.Var)
  }
  total = 0.0
  for equation in reversed(jaxpr.eqns):
    results_used = [var in needed for var in equation.outvars]
    if not (any(results_used) or equation.effects):
      continue
    needed.update(var for var in equation.invars if isinstance(var, core.Var))
    total += _equation_flops(equation, results_used)
  return total


def _equation_flops(
    equation: core.JaxprEqn, results_used: Sequence[bool]
) -> float:
  name = equation.primitive.name
  if name in _UNCOUNTABLE_PRIMITIVES:
    raise NotImplementedError(
        f"Cannot count the FLOPs of a {name!r}: its trip count or branch is"
        " not known from the program's shapes."
    )
  if name == "conv_general_dilated":
    return _convolution_flops(equation)
  if name == "dot_general":
    return _dot_flops(equation)
  copies = _shard_count(equation) if name == "shard_map" else 1
  total = 0.0
  for sub_jaxpr in core.jaxprs_in_params(equation.params):
    # Calls (jit, shard_map, remat, custom derivatives) return their body's
    # outputs one to one; anything else counts its whole body.
    used = results_used
    if len(sub_jaxpr.outvars) != len(results_used):
      used = [True] * len(sub_jaxpr.outvars)
    total += copies * _jaxpr_flops(sub_jaxpr, used)
  return total


def _shard_count(equation: core.JaxprEqn) -> int:
  mesh = equation.params["mesh"]
  return math.prod(
      mesh.shape[axis] for axis in equation.params["newly_manual_axes"]
  )


def _dot_flops(equation: core.JaxprEqn) -> float:
  lhs_shape = equation.invars[0].aval.shape
  (lhs_contracting, _), _ = equation.params["dimension_numbers"]
  output_size = math.prod(equation.outvars[0].aval.shape)
  return 2.0 * output_size * math.prod(lhs_shape[d] for d in lhs_contracting)


def _convolution_flops(equation: core.JaxprEqn) -> float:
  params = equation.params
  lhs_shape = equation.invars[0].aval.shape
  rhs_shape = equation.invars[1].aval.shape
  out_shape = equation.outvars[0].aval.shape
  lhs_spec, rhs_spec, out_spec = params["dimension_numbers"]
  taps = 1
  for axis in range(len(lhs_spec) - 2):
    taps *= _valid_taps(
        input_size=lhs_shape[lhs_spec[2 + axis]],
        kernel_size=rhs_shape[rhs_spec[2 + axis]],
        output_size=out_shape[out_spec[2 + axis]],
        stride=params["window_strides"][axis],
        padding_low=params["padding"][axis][0],
        input_dilation=params["lhs_dilation"][axis],
        kernel_dilation=params["rhs_dilation"][axis],
    )
  # Each output element sums over the kernel's input features at each tap.
  return (
      2.0
      * out_shape[out_spec[0]]
      * out_shape[out_spec[1]]
      * rhs_shape[rhs_spec[1]]
      * taps
  )


def _valid_taps(
    input_size: int,
    kernel_size: int,
    output_size: int,
    stride: int,
    padding_low: int,
    input_dilation: int,
    kernel_dilation: int,
) -> int:
  """Pairs of (output position, kernel tap) along one spatial axis that read
  an input element, not padding or a dilation hole."""
  position = (
      np.arange(output_size)[:, None] * stride
      + np.arange(kernel_size)[None, :] * kernel_dilation
      - padding_low
  )
  dilated_size = (input_size - 1) * input_dilation + 1
  reads_input = (
      (position >= 0)
      & (position < dilated_size)
      & (position % input_dilation == 0)
  )
  return int(reads_input.sum())
