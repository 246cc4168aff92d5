"""Building blocks shared by the generators and discriminators.

pix2pixHD-style layers: convolutions with reflection padding (no border
artefacts in the generated image), instance normalisation without learned
affine parameters, and residual blocks that may be dilated to widen the
receptive field over large holes.

Every layer computes in `dtype` (bfloat16 for mixed precision) while its
parameters stay float32; instance norm takes its statistics in float32
whatever `dtype` is.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from spg_jax.models import space_to_depth

NORMS = ("instance", "none")
# How a 3x3 stride-2 transposed convolution is computed (the same function
# and parameters either way): 'phases' as four small convolutions, one per
# output pixel parity, for XLA:CPU, whose kernel gradient of the input-
# dilated form is slow; 'direct' as `lax.conv_transpose`, the input-dilated
# convolution that cuDNN runs as one backward-data call.
UPSAMPLING_FORMS = ("phases", "direct")

_NHWC_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
DTYPES = ("float32", "bfloat16")

# What a network keeps from its forward pass for the backward pass: 'none'
# keeps everything; 'conv_outputs' keeps the convolutions' outputs and
# recomputes norms and activations (elementwise work, no extra FLOPs to
# speak of); 'full' keeps only the network's input and reruns its forward.
REMAT_POLICIES = {
    "none": None,
    "conv_outputs": jax.checkpoint_policies.dots_saveable,
    "full": jax.checkpoint_policies.nothing_saveable,
}


def compute_dtype(name: str) -> jnp.dtype:
  """The dtype named by `config.dtype`.

  Raises:
    ValueError: `name` is not one of `DTYPES`.
  """
  if name not in DTYPES:
    raise ValueError(f"Unknown dtype {name!r}; choose one of {DTYPES}.")
  return jnp.dtype(name)


def maybe_remat(module_class: type[nn.Module], remat: str) -> Any:
  """`module_class`, rematerialised per `REMAT_POLICIES[remat]` if any.

  Raises:
    ValueError: `remat` is not a key of `REMAT_POLICIES`.
  """
  if remat not in REMAT_POLICIES:
    raise ValueError(
        f"Unknown remat {remat!r}; choose one of {tuple(REMAT_POLICIES)}."
    )
  if remat == "none":
    return module_class
  return nn.remat(module_class, policy=REMAT_POLICIES[remat])


def conv_bias(norm: str) -> bool:
  """Whether a convolution followed by `norm` needs a bias.

  Instance norm subtracts each channel's mean, so a bias before it has no
  effect and a gradient of exactly zero in theory, rounding noise in
  practice, which Adam would amplify into random-walk updates.
  """
  return norm == "none"


def make_norm(
    kind: str, dtype: jnp.dtype = jnp.float32
) -> Callable[[], Callable[[jax.Array], jax.Array]]:
  """Returns a factory of normalisation layers named by `kind`.

  Instance norm normalises each example on its own, so nothing couples the
  examples of a batch and a data-parallel step needs no cross-device
  statistics.

  Args:
    kind: one of `NORMS`.
    dtype: the dtype of the normalised output.

  Raises:
    ValueError: `kind` is not one of `NORMS`.
  """
  if kind == "instance":
    return lambda: nn.InstanceNorm(use_bias=False, use_scale=False, dtype=dtype)
  if kind == "none":
    return lambda: (lambda x: x)
  raise ValueError(f"Unknown norm {kind!r}; choose one of {NORMS}.")


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """Pads the spatial axes of an NHWC tensor by mirroring its border."""
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


class ReflectConv(nn.Module):
  """A stride-1 convolution that keeps the size, padding by reflection.

  `form` is one of `space_to_depth.CONV_FORMS`; 'space_to_depth' applies to
  undilated convolutions only and keeps the parameters' names and shapes.
  """

  features: int
  kernel_size: int
  dilation: int = 1
  use_bias: bool = True
  dtype: jnp.dtype = jnp.float32
  form: str = "direct"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.form not in space_to_depth.CONV_FORMS:
      raise ValueError(
          f"Unknown convolution form {self.form!r}; choose one of"
          f" {space_to_depth.CONV_FORMS}."
      )
    x = reflect_pad(x, self.dilation * (self.kernel_size // 2))
    if self.form == "space_to_depth" and self.dilation == 1:
      return SpaceToDepthConv(
          self.features,
          self.kernel_size,
          use_bias=self.use_bias,
          dtype=self.dtype,
          name="Conv_0",
      )(x)
    return nn.Conv(
        self.features,
        (self.kernel_size, self.kernel_size),
        kernel_dilation=self.dilation,
        padding="VALID",
        use_bias=self.use_bias,
        dtype=self.dtype,
    )(x)


class UpsamplingConvTranspose(nn.Module):
  """`nn.ConvTranspose` 3x3, stride 2, 'SAME', by default as four convolutions.

  The same function and the same parameters ('kernel' [3, 3, in, out],
  'bias') as flax's transposed convolution, computed per output phase: the
  pixel at (2p + a, 2q + b) only sees kernel taps of one parity, so each of
  the four phases is an ordinary convolution of the input with a 1x1, 1x2,
  2x1 or 2x2 slice of the kernel, and the phases interleave into the output.
  FLOPs are those of the transposed convolution; the point is the backward
  pass, whose kernel gradient XLA:CPU computes 6 to 9 times slower for the
  input-dilated convolution that `lax.conv_transpose` lowers to (BENCHMARKS.md).
  `form` (one of `UPSAMPLING_FORMS`) chooses between the two.
  """

  features: int
  use_bias: bool = True
  dtype: jnp.dtype = jnp.float32
  form: str = "phases"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.form not in UPSAMPLING_FORMS:
      raise ValueError(
          f"Unknown upsampling form {self.form!r}; choose one of"
          f" {UPSAMPLING_FORMS}."
      )
    kernel = _kernel(self, 3, x.shape[-1])
    x = x.astype(self.dtype)
    if self.form == "direct":
      y = jax.lax.conv_transpose(
          x, kernel, (2, 2), "SAME", dimension_numbers=_NHWC_DIMENSIONS
      )
    else:
      y = _phase_conv_transpose(x, kernel, self.features)
    if self.use_bias:
      y = _add_bias(self, y)
    return y


def _phase_conv_transpose(
    x: jax.Array, kernel: jax.Array, features: int
) -> jax.Array:
  """`lax.conv_transpose(x, kernel, (2, 2), 'SAME')` as four convolutions."""
  # Along one axis, output 2p sees taps 0 and 2 (inputs p-1 and p), output
  # 2p+1 sees tap 1 (input p): (taps, zero padding before) per parity.
  parities = (((0, 2), 1), ((1,), 0))
  rows = []
  for row_taps, row_pad in parities:
    row = []
    for col_taps, col_pad in parities:
      row.append(
          jax.lax.conv_general_dilated(
              x,
              kernel[jnp.array(row_taps)][:, jnp.array(col_taps)],
              window_strides=(1, 1),
              padding=((row_pad, 0), (col_pad, 0)),
              dimension_numbers=_NHWC_DIMENSIONS,
          )
      )
    rows.append(jnp.stack(row, axis=3))
  batch, height, width, _ = x.shape
  return jnp.stack(rows, axis=2).reshape(
      batch, 2 * height, 2 * width, features
  )


class SpaceToDepthConv(nn.Module):
  """`nn.Conv(features, (k, k), padding='VALID')` by `space_to_depth.conv`.

  The same parameters ('kernel' [k, k, C, O], 'bias' [O]) with the same
  initialisers, so either form reads the other's checkpoints.
  """

  features: int
  kernel_size: int
  use_bias: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = _kernel(self, self.kernel_size, x.shape[-1])
    y = space_to_depth.conv(x.astype(self.dtype), kernel)
    if self.use_bias:
      y = _add_bias(self, y)
    return y


def _kernel(module: nn.Module, size: int, in_features: int) -> jax.Array:
  """`module`'s float32 'kernel' [size, size, in_features, module.features],
  initialised as flax's convolutions initialise theirs, in `module.dtype`."""
  kernel = module.param(
      "kernel",
      nn.initializers.lecun_normal(),
      (size, size, in_features, module.features),
      jnp.float32,
  )
  return kernel.astype(module.dtype)


def _add_bias(module: nn.Module, y: jax.Array) -> jax.Array:
  """`y` plus `module`'s float32 'bias' of `module.features`, zeros at first,
  in `module.dtype`, named as flax's own layers name theirs."""
  bias = module.param(
      "bias", nn.initializers.zeros, (module.features,), jnp.float32
  )
  return y + bias.astype(module.dtype)


class ResidualBlock(nn.Module):
  """conv-norm-ReLU-conv-norm with an identity skip, as in pix2pixHD."""

  features: int
  norm: str
  dilation: int = 1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    norm = make_norm(self.norm, self.dtype)
    use_bias = conv_bias(self.norm)
    y = ReflectConv(self.features, 3, self.dilation, use_bias, self.dtype)(x)
    y = nn.relu(norm()(y))
    y = ReflectConv(self.features, 3, use_bias=use_bias, dtype=self.dtype)(y)
    return x + norm()(y)
