"""SPG-Net as a whole: the four networks and the two-stage completion.

`Networks` builds SP-Net, SG-Net and a discriminator for each from a config.
`complete` runs the method end to end: predict the hole's labels, composite
them with the known labels, render the image from them, composite it with the
known pixels. Pure functions of parameters and arrays, shared by training,
evaluation and inference.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from spg_jax.data import classes
from spg_jax.models import discriminators
from spg_jax.models import generators
from spg_jax.models import layers

Params = Any


@dataclasses.dataclass(frozen=True)
class Networks:
  """The Flax modules of SPG-Net (parameters live elsewhere)."""

  sp: generators.SPNet
  sg: generators.SGNet
  sp_disc: discriminators.MultiScaleDiscriminator
  sg_disc: discriminators.MultiScaleDiscriminator
  num_classes: int

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "Networks":
    model = config.model
    num_classes = classes.get_class_table(config.data.classes).num_classes
    # Runs saved before mixed precision and remat existed ran float32, whole.
    shared = dict(
        dtype=layers.compute_dtype(config.get("dtype", "float32")),
        remat=model.get("remat", "none"),
    )
    return cls(
        sp=generators.SPNet(num_classes, model.sp_generator, **shared),
        sg=generators.SGNet(model.sg_generator, **shared),
        sp_disc=discriminators.MultiScaleDiscriminator(
            **model.discriminator, **shared
        ),
        sg_disc=discriminators.MultiScaleDiscriminator(
            **model.discriminator, **shared
        ),
        num_classes=num_classes,
    )

  def one_hot(self, labels: jax.Array) -> jax.Array:
    """int label ids [B, H, W] -> float one-hot [B, H, W, num_classes]."""
    return jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32)

  def init(
      self, rng: jax.Array, image_size: int
  ) -> dict[str, Params]:
    """Initialises the parameters of the four networks for square images."""
    image = jnp.zeros([1, image_size, image_size, 3])
    labels = jnp.zeros([1, image_size, image_size, self.num_classes])
    mask = jnp.zeros([1, image_size, image_size, 1])
    sp_rng, sg_rng, sp_disc_rng, sg_disc_rng = jax.random.split(rng, 4)
    return {
        "sp": self.sp.init(sp_rng, image, labels, mask),
        "sg": self.sg.init(sg_rng, image, labels, mask),
        "sp_disc": self.sp_disc.init(
            sp_disc_rng, sp_disc_input(image, mask, labels)
        ),
        "sg_disc": self.sg_disc.init(
            sg_disc_rng, sg_disc_input(labels, mask, image)
        ),
    }

  def predict_labels(
      self,
      sp_params: Params,
      image: jax.Array,
      known_labels: jax.Array,
      mask: jax.Array,
  ) -> tuple[jax.Array, jax.Array]:
    """SP-Net: returns its raw logits and the completed label probabilities.

    Args:
      sp_params: SP-Net's variables.
      image: [B, H, W, 3] in [-1, 1]; the hole's content is never read.
      known_labels: one-hot [B, H, W, C]; the hole's content is never read.
      mask: [B, H, W, 1], 1 = hole.

    Returns:
      logits [B, H, W, C], and the probabilities: `known_labels` exactly
      outside the hole, SP-Net's softmax inside.
    """
    logits = self.sp.apply(sp_params, image, known_labels, mask)
    completed = generators.composite_labels(
        jax.nn.softmax(logits), known_labels, mask
    )
    return logits, completed

  def render(
      self,
      sg_params: Params,
      image: jax.Array,
      labels: jax.Array,
      mask: jax.Array,
  ) -> tuple[jax.Array, jax.Array]:
    """SG-Net: returns its raw output and the image composited with `image`."""
    generated = self.sg.apply(sg_params, image, labels, mask)
    return generated, generators.composite_image(generated, image, mask)

  def complete(
      self,
      params: dict[str, Params],
      image: jax.Array,
      known_labels: jax.Array,
      mask: jax.Array,
  ) -> tuple[jax.Array, jax.Array]:
    """Inpaints end to end; returns (label ids [B, H, W], image [B, H, W, 3]).

    SG-Net renders from the one-hot of the completed labels' argmax, the same
    kind of label map it is trained on and a user would edit.
    """
    _, probabilities = self.predict_labels(
        params["sp"], image, known_labels, mask
    )
    labels = jnp.argmax(probabilities, axis=-1)
    _, output = self.render(params["sg"], image, self.one_hot(labels), mask)
    return labels, output


def sp_disc_input(
    image: jax.Array, mask: jax.Array, labels: jax.Array
) -> jax.Array:
  """SP-Net's discriminator judges a label map given the corrupted image."""
  return jnp.concatenate([image * (1.0 - mask), mask, labels], axis=-1)


def sg_disc_input(
    labels: jax.Array, mask: jax.Array, image: jax.Array
) -> jax.Array:
  """SG-Net's discriminator judges an image given its label map and hole."""
  return jnp.concatenate([labels, mask, image], axis=-1)
