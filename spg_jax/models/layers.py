"""Building blocks shared by the generators and discriminators.

pix2pixHD-style layers: convolutions with reflection padding (no border
artefacts in the generated image), instance normalisation without learned
affine parameters, and residual blocks that may be dilated to widen the
receptive field over large holes.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMS = ("instance", "none")


def conv_bias(norm: str) -> bool:
  """Whether a convolution followed by `norm` needs a bias.

  Instance norm subtracts each channel's mean, so a bias before it has no
  effect and a gradient of exactly zero in theory, rounding noise in
  practice, which Adam would amplify into random-walk updates.
  """
  return norm == "none"


def make_norm(kind: str) -> Callable[[], Callable[[jax.Array], jax.Array]]:
  """Returns a factory of normalisation layers named by `kind`.

  Instance norm normalises each example on its own, so nothing couples the
  examples of a batch and a data-parallel step needs no cross-device
  statistics.

  Args:
    kind: one of `NORMS`.

  Raises:
    ValueError: `kind` is not one of `NORMS`.
  """
  if kind == "instance":
    return lambda: nn.InstanceNorm(use_bias=False, use_scale=False)
  if kind == "none":
    return lambda: (lambda x: x)
  raise ValueError(f"Unknown norm {kind!r}; choose one of {NORMS}.")


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """Pads the spatial axes of an NHWC tensor by mirroring its border."""
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


class ReflectConv(nn.Module):
  """A stride-1 convolution that keeps the size, padding by reflection."""

  features: int
  kernel_size: int
  dilation: int = 1
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = reflect_pad(x, self.dilation * (self.kernel_size // 2))
    return nn.Conv(
        self.features,
        (self.kernel_size, self.kernel_size),
        kernel_dilation=self.dilation,
        padding="VALID",
        use_bias=self.use_bias,
    )(x)


class ResidualBlock(nn.Module):
  """conv-norm-ReLU-conv-norm with an identity skip, as in pix2pixHD."""

  features: int
  norm: str
  dilation: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    norm = make_norm(self.norm)
    use_bias = conv_bias(self.norm)
    y = ReflectConv(self.features, 3, self.dilation, use_bias)(x)
    y = nn.relu(norm()(y))
    y = ReflectConv(self.features, 3, use_bias=use_bias)(y)
    return x + norm()(y)
