"""Loss functions of SPG-Net, pure: each returns `(loss, metrics)`.

Discriminator outputs are a multi-scale discriminator's list (one entry per
scale) of lists of feature maps whose last element holds the patch logits.
Every loss averages over scales, so a weight means the same whatever the
number of scales. The losses over a hole or the known region take the
batch's mesh axis inside a data-parallel step and then divide by the whole
batch's pixel count, not a device's (`masked_mean`), so that the step is the
same on any number of devices.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from spg_jax.data import classes
from spg_jax.training import perceptual

GAN_LOSSES = ("lsgan", "hinge", "nonsaturating")

Metrics = dict[str, jax.Array]
ScaleOutputs = Sequence[Sequence[jax.Array]]


def _mean_over_scales(values: Sequence[jax.Array]) -> jax.Array:
  return sum(values) / len(values)


def _check_gan_kind(kind: str) -> None:
  if kind not in GAN_LOSSES:
    raise ValueError(f"Unknown GAN loss {kind!r}; choose one of {GAN_LOSSES}.")


def discriminator_loss(
    real: ScaleOutputs, fake: ScaleOutputs, kind: str
) -> tuple[jax.Array, Metrics]:
  """The discriminator's GAN loss: real patches toward real, fake toward fake.

  Args:
    real: the discriminator's outputs on real samples.
    fake: its outputs on generated samples.
    kind: 'lsgan' (least squares, targets 1 and 0), 'hinge', or
      'nonsaturating' (logistic).

  Returns:
    The loss and metrics: its real and fake halves and the mean real and fake
    logits ("D scores").
  """
  _check_gan_kind(kind)
  real_logits = [outputs[-1] for outputs in real]
  fake_logits = [outputs[-1] for outputs in fake]
  if kind == "lsgan":
    real_terms = [jnp.mean((x - 1.0) ** 2) for x in real_logits]
    fake_terms = [jnp.mean(x**2) for x in fake_logits]
  elif kind == "hinge":
    real_terms = [jnp.mean(jax.nn.relu(1.0 - x)) for x in real_logits]
    fake_terms = [jnp.mean(jax.nn.relu(1.0 + x)) for x in fake_logits]
  else:
    real_terms = [jnp.mean(jax.nn.softplus(-x)) for x in real_logits]
    fake_terms = [jnp.mean(jax.nn.softplus(x)) for x in fake_logits]
  real_loss = _mean_over_scales(real_terms)
  fake_loss = _mean_over_scales(fake_terms)
  return real_loss + fake_loss, {
      "d_real_loss": real_loss,
      "d_fake_loss": fake_loss,
      "d_real_score": _mean_over_scales([jnp.mean(x) for x in real_logits]),
      "d_fake_score": _mean_over_scales([jnp.mean(x) for x in fake_logits]),
  }


def generator_gan_loss(fake: ScaleOutputs, kind: str) -> jax.Array:
  """The generator's GAN loss: make the discriminator call fakes real."""
  _check_gan_kind(kind)
  logits = [outputs[-1] for outputs in fake]
  if kind == "lsgan":
    terms = [jnp.mean((x - 1.0) ** 2) for x in logits]
  elif kind == "hinge":
    terms = [-jnp.mean(x) for x in logits]
  else:
    terms = [jnp.mean(jax.nn.softplus(-x)) for x in logits]
  return _mean_over_scales(terms)


def feature_matching_loss(real: ScaleOutputs, fake: ScaleOutputs) -> jax.Array:
  """L1 between the discriminator's features of fake and real samples.

  pix2pixHD's "discriminator feature matching", which SPG-Net calls its
  perceptual loss on discriminator features. The logits are excluded; the real
  features are constants (no gradient reaches the discriminator through them).
  """
  per_scale = []
  for real_features, fake_features in zip(real, fake, strict=True):
    pairs = list(zip(real_features[:-1], fake_features[:-1], strict=True))
    per_scale.append(
        sum(
            jnp.mean(jnp.abs(f - jax.lax.stop_gradient(r))) for r, f in pairs
        )
        / len(pairs)
    )
  return _mean_over_scales(per_scale)


def masked_mean(
    values: jax.Array, weights: jax.Array, axis_name: str | None = None
) -> jax.Array:
  """Weighted mean of `values` over the whole batch; 0 where all weights are 0.

  `weights` broadcasts against `values`; the denominator counts each weighted
  element of `values`, so a mask [B,H,W,1] over an image [B,H,W,3] counts 3
  values per hole pixel.

  Args:
    values: the values to average.
    weights: their weights, e.g. a hole mask.
    axis_name: None outside a mapped computation. Inside a per-device step
      (a shard_map over a mesh axis that splits the batch), that axis: the
      numerator stays this device's weighted sum, the denominator becomes
      the mean over the axis of each device's weight sum. The mean over
      devices of the result, which the step's `lax.pmean` of metrics and
      gradients takes, is then exactly the global ratio sum(numerators) /
      sum(denominators), the same on any number of devices, however the
      weights are spread over them.
  """
  weights = jnp.broadcast_to(weights, values.shape)
  numerator = jnp.sum(values * weights)
  denominator = jnp.sum(weights)
  if axis_name is not None:
    denominator = jax.lax.pmean(denominator, axis_name)
  # Divides by 1 where the denominator is 0 so that neither the value nor
  # the gradient holds a 0/0.
  has_weight = denominator > 0
  return jnp.where(
      has_weight, numerator / jnp.where(has_weight, denominator, 1.0), 0.0
  )


def region_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    region: jax.Array,
    excluded_class: int | None = None,
    axis_name: str | None = None,
) -> jax.Array:
  """Mean cross-entropy of the label logits over a region's pixels.

  Args:
    logits: [B, H, W, C].
    labels: int [B, H, W] true class ids.
    region: [B, H, W, 1], 1 where pixels count: the hole for SP-Net, the
      known region for the segmenter.
    excluded_class: a class id whose pixels count neither in the sum nor in
      the pixel count (see `excluded_cross_entropy_class`), or None.
    axis_name: the batch's mesh axis inside a per-device step (see
      `masked_mean`), None outside one.
  """
  per_pixel = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  weights = region[..., 0]
  if excluded_class is not None:
    weights = weights * (labels != excluded_class).astype(weights.dtype)
  return masked_mean(per_pixel, weights, axis_name)


def segmenter_loss(
    logits: jax.Array,
    labels: jax.Array,
    mask: jax.Array,
    excluded_class: int | None = None,
    axis_name: str | None = None,
) -> tuple[jax.Array, Metrics]:
  """The segmenter's loss: cross-entropy over the known region only.

  It labels corrupted images, so the hole (mask 1), whose pixels it never
  sees, is left out: it is SP-Net's to predict. `excluded_class` and
  `axis_name` are `region_cross_entropy`'s.
  """
  loss = region_cross_entropy(
      logits, labels, 1.0 - mask, excluded_class, axis_name
  )
  return loss, {"loss": loss, "cross_entropy_known": loss}


def excluded_cross_entropy_class(
    loss_config: ml_collections.ConfigDict, class_table: str
) -> int | None:
  """The class the label cross-entropies leave out, or None.

  With `loss_config.cross_entropy_on_void` False, hole pixels whose true
  class is the void class of the class table named `class_table`
  (config.data.classes) are left out; with it True, no class is.

  Raises:
    ValueError: `cross_entropy_on_void` is False but the table has no void
      class, so there would be nothing to leave out.
  """
  if loss_config.cross_entropy_on_void:
    return None
  void_id = classes.get_class_table(class_table).void_id
  if void_id is None:
    raise ValueError(
        "config.loss.cross_entropy_on_void=False leaves the void class out of"
        f" SP-Net's and the segmenter's cross-entropy, but the class table {class_table!r}"
        " (config.data.classes) has no void class. Set"
        " --config.loss.cross_entropy_on_void=True, or use a class table"
        " that names its void class."
    )
  return void_id


def _weighted_total(
    terms: Metrics, weights: dict[str, float]
) -> tuple[jax.Array, Metrics]:
  """Sums `terms` by `weights` (same keys); returns it and all terms."""
  total = sum(weights[name] * value for name, value in terms.items())
  return total, {"loss": total, **terms}


def _adversarial_terms(fake: ScaleOutputs, real: ScaleOutputs, kind: str) -> Metrics:
  """The GAN and feature-matching terms every generator loss has."""
  return {
      "g_gan": generator_gan_loss(fake, kind),
      "feature_matching": feature_matching_loss(real, fake),
  }


def _adversarial_weights(loss_config: ml_collections.ConfigDict) -> dict[str, float]:
  return {
      "g_gan": loss_config.gan_weight,
      "feature_matching": loss_config.feature_matching_weight,
  }


def sp_generator_loss(
    logits: jax.Array,
    labels: jax.Array,
    mask: jax.Array,
    fake: ScaleOutputs,
    real: ScaleOutputs,
    loss_config: ml_collections.ConfigDict,
    excluded_class: int | None = None,
    axis_name: str | None = None,
) -> tuple[jax.Array, Metrics]:
  """SP-Net's loss: hole cross-entropy, GAN, discriminator feature matching.

  The cross-entropy is `region_cross_entropy` over the hole (mask 1);
  `excluded_class` and `axis_name` are its.
  """
  terms = {
      "cross_entropy_hole": region_cross_entropy(
          logits, labels, mask, excluded_class, axis_name
      ),
      **_adversarial_terms(fake, real, loss_config.gan),
  }
  weights = {
      "cross_entropy_hole": loss_config.cross_entropy_weight,
      **_adversarial_weights(loss_config),
  }
  return _weighted_total(terms, weights)


def sg_generator_loss(
    generated: jax.Array,
    image: jax.Array,
    mask: jax.Array,
    fake: ScaleOutputs,
    real: ScaleOutputs,
    loss_config: ml_collections.ConfigDict,
    axis_name: str | None = None,
    perceptual_terms: Metrics | None = None,
) -> tuple[jax.Array, Metrics]:
  """SG-Net's loss: L1 on hole and known region, GAN, feature matching,
  and the perceptual terms.

  `generated` is the raw output (before compositing): on the known region the
  composite copies the input, so only the raw output has an error there.
  `axis_name` is `masked_mean`'s. `perceptual_terms` are
  `perceptual.terms(...)` of the same output, each weighted by its config
  weight (`perceptual.weights`).
  """
  error = jnp.abs(generated - image)
  terms = {
      "l1_hole": masked_mean(error, mask, axis_name),
      "l1_known": masked_mean(error, 1.0 - mask, axis_name),
      **_adversarial_terms(fake, real, loss_config.gan),
      **(perceptual_terms or {}),
  }
  weights = {
      "l1_hole": loss_config.l1_hole_weight,
      "l1_known": loss_config.l1_known_weight,
      **_adversarial_weights(loss_config),
      **perceptual.weights(loss_config),
  }
  return _weighted_total(terms, weights)
