"""SG-Net's perceptual losses on frozen pretrained networks.

Two terms compare SG-Net's raw output with the true image through networks
trained on ImageNet, whose weights never change:

- 'lpips' (`loss.lpips_weight`): the LPIPS v0.1 distance on AlexNet, the
  perceptual loss SPG-Net's paper trains SG-Net with, averaged over the
  batch;
- 'vgg' (`loss.vgg_weight`, ours, as pix2pixHD trains its generators): the
  mean absolute difference of VGG19's activations at `loss.vgg_taps`,
  weighted per tap by `loss.vgg_tap_weights`, the true image's activations
  held constant.

A term with weight 0 is not computed and its network never loaded. The
networks' parameters come from the converted files that `spg-weights`
makes (`spg_jax.pretrained.converted`), read once before training and
passed to the train step as an argument, so they are neither trained nor
checkpointed, nor baked into the compiled program as constants.
"""

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import ml_collections

from spg_jax.pretrained import conversion
from spg_jax.pretrained import converted
from spg_jax.pretrained import imagenet
from spg_jax.pretrained import lpips
from spg_jax.pretrained import published
from spg_jax.pretrained import vgg

# Each term: its weight's config key, its network in
# `converted.NETWORKS` and the config key of that network's file.
TERMS = {
    "lpips": ("lpips_weight", "lpips", "lpips_weights"),
    "vgg": ("vgg_weight", "vgg19", "vgg19_weights"),
}

Params = Mapping[str, dict]


def enabled_terms(loss_config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The perceptual terms whose weight is positive."""
  return tuple(term for term, (weight_key, *_) in TERMS.items()
               if loss_config[weight_key] > 0)


def check_config(loss_config: ml_collections.ConfigDict,
                 image_size: int) -> None:
  """Refuses VGG taps and tap weights that do not fit together, and LPIPS
  on images smaller than AlexNet can read.

  Raises:
    ValueError: an unknown tap, not one weight per tap, or LPIPS on
      `image_size` below `lpips.MIN_SIZE`.
  """
  if "lpips" in enabled_terms(loss_config) and image_size < lpips.MIN_SIZE:
    raise ValueError(
        f"config.loss.lpips_weight={loss_config.lpips_weight} needs images of"
        f" at least {lpips.MIN_SIZE}x{lpips.MIN_SIZE} (AlexNet's features),"
        f" but config.data.image_size is {image_size}. Train at a larger size"
        " or set --config.loss.lpips_weight=0."
    )
  vgg.check_taps(loss_config.vgg_taps)
  if len(loss_config.vgg_tap_weights) != len(loss_config.vgg_taps):
    raise ValueError(
        f"config.loss.vgg_tap_weights has {len(loss_config.vgg_tap_weights)}"
        f" weights for {len(loss_config.vgg_taps)} taps"
        f" ({', '.join(loss_config.vgg_taps)}); give one weight per tap."
    )


def load_params(loss_config: ml_collections.ConfigDict) -> dict[str, dict]:
  """The converted parameters of every enabled term's network, by term.

  Raises:
    published.WeightsUnavailableError, conversion.WeightsError: as
      `converted.load`, for the first network that cannot be loaded.
  """
  params = {}
  for term in enabled_terms(loss_config):
    _, network, path_key = TERMS[term]
    params[term] = converted.load(network, loss_config[path_key])
  return params


def params_for_timing(
    loss_config: ml_collections.ConfigDict,
) -> tuple[dict[str, dict], str]:
  """Parameters for a benchmark of the step, and where they came from.

  The converted weights where `load_params` finds them; otherwise each
  network's random initialisation, which costs the same time (the
  networks compute the same operations on any values) but whose loss
  means nothing, so it is only for timing.
  """
  try:
    return load_params(loss_config), "converted"
  except (published.WeightsUnavailableError, conversion.WeightsError):
    pass
  params = {}
  for term in enabled_terms(loss_config):
    layout = converted.NETWORKS[TERMS[term][1]].layout()
    params[term] = jax.tree.map(
        lambda leaf: jax.random.normal(jax.random.key(0), leaf.shape,
                                       leaf.dtype) * 0.01,
        layout)
  return params, "random (the converted files are missing; timing only)"


def _vgg_distance(params: dict, generated: jax.Array, image: jax.Array,
                  loss_config: ml_collections.ConfigDict) -> jax.Array:
  network = vgg.VGG19Features(taps=tuple(loss_config.vgg_taps))
  both = jnp.concatenate([generated, image], axis=0)
  taps = network.apply({"params": params}, imagenet.normalise(both))
  distance = 0.0
  for weight, tap in zip(loss_config.vgg_tap_weights, taps, strict=True):
    fake, real = jnp.split(tap, 2, axis=0)
    distance += weight * jnp.mean(jnp.abs(fake - jax.lax.stop_gradient(real)))
  return distance


def terms(
    params: Params,
    generated: jax.Array,
    image: jax.Array,
    loss_config: ml_collections.ConfigDict,
) -> dict[str, jax.Array]:
  """Each enabled term between `generated` and `image` ([B, H, W, 3] in
  [-1, 1]); `params` is `load_params`' (or arrays of the same tree)."""
  values = {}
  for term in enabled_terms(loss_config):
    if term == "lpips":
      values[term] = jnp.mean(
          lpips.LPIPS().apply({"params": params[term]}, generated, image))
    else:
      values[term] = _vgg_distance(params[term], generated, image,
                                   loss_config)
  return values


def weights(loss_config: ml_collections.ConfigDict) -> dict[str, float]:
  """Each enabled term's weight in SG-Net's loss."""
  return {term: loss_config[TERMS[term][0]]
          for term in enabled_terms(loss_config)}
