"""SPG-Net as a whole: its networks and the two-stage completion.

`Networks` builds SP-Net, SG-Net and a discriminator for each from a config,
and the segmenter that labels a corrupted image's known region when the run
trains one. `known_label_map` gives SP-Net's known-region labels from the
run's source (`config.known_labels`); `complete` runs the method end to end:
predict the hole's labels, composite them with the known labels, render the
image from them, composite it with the known pixels. Pure functions of
parameters and arrays, shared by training, evaluation and inference.
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
from spg_jax.models import segmenter

Params = Any

# Where SP-Net's known-region labels come from (`config.known_labels`):
# 'ground_truth', the dataset's labels, or 'segmenter', the run's segmenter
# labelling the corrupted image, as the paper does with DeepLabv3+.
KNOWN_LABEL_SOURCES = ("ground_truth", "segmenter")
# What `Networks.init` folds into its key for the segmenter's.
_SEGMENTER_KEY = 1

# Config keys of the networks added after runs were saved, with the value
# those runs computed with: a saved config without one is read as holding
# it (here, and by the resume check).
VALUES_BEFORE_THE_KEY_EXISTED = {
    "known_labels": "ground_truth",
    "model.guidance": "labels",
    "model.label_injection": "input",
    "model.segmenter.backbone_weights": "",
}


def saved_value(config: ml_collections.ConfigDict, key: str) -> Any:
  """`config`'s value at the dotted `key` of VALUES_BEFORE_THE_KEY_EXISTED,
  or, for a config saved before the key existed, the value it ran with."""
  *parents, leaf = key.split(".")
  node = config
  for parent in parents:
    node = node[parent]
  return node.get(leaf, VALUES_BEFORE_THE_KEY_EXISTED[key])


def has_segmenter(config: ml_collections.ConfigDict) -> bool:
  """Whether the run trains a segmenter: its 'seg' phase has steps.

  Runs saved before the segmenter existed have no 'seg' phase.
  """
  phase = config.schedule.get("seg")
  return phase is not None and phase.steps > 0


def check_known_labels(config: ml_collections.ConfigDict) -> None:
  """Refuses a known-label source the run cannot provide.

  Raises:
    ValueError: an unknown `config.known_labels`, or 'segmenter' in a run
      without a segmenter phase.
  """
  source = saved_value(config, "known_labels")
  if source not in KNOWN_LABEL_SOURCES:
    raise ValueError(
        f"Unknown config.known_labels {source!r}; choose one of"
        f" {KNOWN_LABEL_SOURCES}."
    )
  if source == "segmenter" and not has_segmenter(config):
    raise ValueError(
        "config.known_labels='segmenter' needs a segmenter, but"
        " config.schedule.seg.steps is 0, so none is trained. Set"
        " --config.schedule.seg.steps (and decay_steps) > 0, or"
        " --config.known_labels=ground_truth."
    )


@dataclasses.dataclass(frozen=True)
class Networks:
  """The Flax modules of SPG-Net (parameters live elsewhere)."""

  sp: generators.SPNet
  sg: generators.SGNet
  sp_disc: discriminators.MultiScaleDiscriminator
  sg_disc: discriminators.MultiScaleDiscriminator
  num_classes: int
  # generators.GUIDANCES: whether SG-Net and its discriminator see labels.
  guidance: str = "labels"
  # The segmenter, None in a run without one.
  seg: segmenter.Segmenter | None = None
  known_labels: str = "ground_truth"

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "Networks":
    model = config.model
    num_classes = classes.get_class_table(config.data.classes).num_classes
    guidance = saved_value(config, "model.guidance")
    generators.check_guidance(guidance)
    check_known_labels(config)
    # Runs saved before mixed precision and remat existed ran float32, whole.
    shared = dict(
        dtype=layers.compute_dtype(config.get("dtype", "float32")),
        remat=model.get("remat", "none"),
    )
    return cls(
        sp=generators.SPNet(num_classes, model.sp_generator, **shared),
        sg=generators.SGNet(
            model.sg_generator,
            guidance=guidance,
            label_injection=saved_value(config, "model.label_injection"),
            **shared,
        ),
        sp_disc=discriminators.MultiScaleDiscriminator(
            **model.discriminator, **shared
        ),
        sg_disc=discriminators.MultiScaleDiscriminator(
            **model.discriminator, **shared
        ),
        num_classes=num_classes,
        guidance=guidance,
        seg=(
            segmenter.Segmenter(num_classes, model.segmenter, **shared)
            if has_segmenter(config)
            else None
        ),
        known_labels=saved_value(config, "known_labels"),
    )

  def one_hot(self, labels: jax.Array) -> jax.Array:
    """int label ids [B, H, W] -> float one-hot [B, H, W, num_classes]."""
    return jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32)

  def init(
      self, rng: jax.Array, image_size: int
  ) -> dict[str, Params]:
    """Initialises the parameters of every network for square images."""
    image = jnp.zeros([1, image_size, image_size, 3])
    labels = jnp.zeros([1, image_size, image_size, self.num_classes])
    mask = jnp.zeros([1, image_size, image_size, 1])
    sp_rng, sg_rng, sp_disc_rng, sg_disc_rng = jax.random.split(rng, 4)
    # The segmenter's key is derived apart from the split, so that a run
    # with a segmenter starts the other networks where a run without does.
    seg = {}
    if self.seg is not None:
      seg["seg"] = self.seg.init(
          jax.random.fold_in(rng, _SEGMENTER_KEY), image, mask
      )
    return seg | {
        "sp": self.sp.init(sp_rng, image, labels, mask),
        "sg": self.sg.init(sg_rng, image, labels, mask),
        "sp_disc": self.sp_disc.init(
            sp_disc_rng, sp_disc_input(image, mask, labels)
        ),
        "sg_disc": self.sg_disc.init(
            sg_disc_rng, self.sg_disc_input(labels, mask, image)
        ),
    }

  def segment(
      self, seg_params: Params, image: jax.Array, mask: jax.Array
  ) -> jax.Array:
    """The segmenter's label ids [B, H, W] for a corrupted image.

    Raises:
      ValueError: the run has no segmenter.
    """
    if self.seg is None:
      raise ValueError(
          "This run has no segmenter (config.schedule.seg.steps is 0), so it"
          " cannot label images: give the known region's labels instead."
      )
    return jnp.argmax(self.seg.apply(seg_params, image, mask), axis=-1)

  def known_label_map(
      self,
      params: dict[str, Params],
      image: jax.Array,
      mask: jax.Array,
      true_labels: jax.Array,
  ) -> jax.Array:
    """SP-Net's known-region labels, one-hot, from the run's source.

    Args:
      params: the networks' parameters (the segmenter's under 'seg').
      image: [B, H, W, 3] in [-1, 1]; the hole's content is never read.
      mask: [B, H, W, 1], 1 = hole.
      true_labels: int [B, H, W] ground-truth label ids, used as they are
        with `known_labels` 'ground_truth' and ignored with 'segmenter'.
    """
    if self.known_labels == "segmenter":
      true_labels = jax.lax.stop_gradient(
          self.segment(params["seg"], image, mask)
      )
    return self.one_hot(true_labels)

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

  def sg_disc_input(
      self, labels: jax.Array, mask: jax.Array, image: jax.Array
  ) -> jax.Array:
    """SG-Net's discriminator judges an image given its label map and hole.

    Without guidance it sees no labels either, so that nothing about the
    labels reaches SG-Net through the adversarial loss.
    """
    guide = [labels] if self.guidance == "labels" else []
    return jnp.concatenate([*guide, mask, image], axis=-1)


def sp_disc_input(
    image: jax.Array, mask: jax.Array, labels: jax.Array
) -> jax.Array:
  """SP-Net's discriminator judges a label map given the corrupted image."""
  return jnp.concatenate([image * (1.0 - mask), mask, labels], axis=-1)
