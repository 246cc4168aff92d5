"""The input convention of torchvision's ImageNet networks.

They read RGB images in [0, 1] less a per-channel mean, over a per-channel
standard deviation, both ImageNet's; spg_jax's images are in [-1, 1].
"""

import jax
import jax.numpy as jnp

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalise(images: jax.Array) -> jax.Array:
  """Images [..., 3] in [-1, 1] as torchvision's ImageNet networks expect."""
  zero_one = (images + 1.0) / 2.0
  return (zero_one - jnp.asarray(MEAN)) / jnp.asarray(STD)
