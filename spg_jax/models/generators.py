"""SP-Net and SG-Net: pix2pixHD "global generators" with SPG-Net's inputs.

Both networks see the corrupted image, a label map and the hole mask. They
zero the hole themselves before anything else, so no pixel or label inside the
hole can leak into a prediction, whatever the caller passes. Their raw outputs
cover the whole image; `composite_labels` and `composite_image` keep the known
region exactly as given and take only the hole from the network.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from spg_jax.models import layers

UPSAMPLINGS = ("transpose", "resize")
# What SG-Net renders from: 'labels', the paper's SG-Net, reads a complete
# label map; 'none' reads only the corrupted image and the mask, the paper's
# ablation of the same generator without segmentation guidance.
GUIDANCES = ("labels", "none")
# Where SG-Net reads its labels: 'input', the paper's, only with the image
# at the generator's input; 'decoder' (ours) also at every decoder stage and
# at the last convolution, averaged down to each stage's resolution, so
# that the labels reach the layers that draw the hole without passing
# through the whole encoder.
LABEL_INJECTIONS = ("input", "decoder")


class GlobalGenerator(nn.Module):
  """Encoder, residual blocks, decoder (pix2pixHD's global generator).

  A 7x7 convolution, `num_downsamplings` stride-2 convolutions doubling the
  width each time, `num_blocks` residual blocks, as many 2x upsamplings back,
  and a 7x7 convolution to `out_features`. The input's height and width must
  be multiples of 2**num_downsamplings. The layers compute in `dtype`; the
  output is float32, so that softmax, tanh and the losses are.
  A `side_input` map, if given, is concatenated to the input of every
  decoder stage and of the last convolution, averaged over blocks down to
  that stage's resolution.
  `output_conv_form` (one of `space_to_depth.CONV_FORMS`) is how the last
  7x7 convolution, to the few output channels, is computed; the parameters
  are the same either way; so is `upsampling_form` (one of
  `layers.UPSAMPLING_FORMS`) for the transposed convolutions.
  """

  out_features: int
  base_features: int = 64
  num_downsamplings: int = 4
  num_blocks: int = 9
  dilation: int = 1
  norm: str = "instance"
  upsampling: str = "transpose"
  dtype: jnp.dtype = jnp.float32
  output_conv_form: str = "direct"
  upsampling_form: str = "phases"

  @nn.compact
  def __call__(
      self, x: jax.Array, side_input: jax.Array | None = None
  ) -> jax.Array:
    factor = 2**self.num_downsamplings
    if x.shape[1] % factor or x.shape[2] % factor:
      raise ValueError(
          f"The generator needs height and width divisible by {factor}"
          f" (2**num_downsamplings); got {x.shape[1]}x{x.shape[2]}. Pad the"
          " input or choose a size that is a multiple."
      )
    if self.upsampling not in UPSAMPLINGS:
      raise ValueError(
          f"Unknown upsampling {self.upsampling!r}; choose one of"
          f" {UPSAMPLINGS}."
      )
    norm = layers.make_norm(self.norm, self.dtype)
    use_bias = layers.conv_bias(self.norm)
    features = self.base_features
    x = layers.ReflectConv(features, 7, use_bias=use_bias, dtype=self.dtype)(x)
    x = nn.relu(norm()(x))
    for _ in range(self.num_downsamplings):
      features *= 2
      x = nn.Conv(
          features,
          (3, 3),
          strides=(2, 2),
          padding="SAME",
          use_bias=use_bias,
          dtype=self.dtype,
      )(x)
      x = nn.relu(norm()(x))
    for _ in range(self.num_blocks):
      x = layers.ResidualBlock(
          features, self.norm, self.dilation, dtype=self.dtype
      )(x)
    for index in range(self.num_downsamplings):
      features //= 2
      x = self._upsample(_with_side_input(x, side_input), features, index)
      x = nn.relu(norm()(x))
    x = _with_side_input(x, side_input)
    output = layers.ReflectConv(
        self.out_features, 7, dtype=self.dtype, form=self.output_conv_form
    )(x)
    return output.astype(jnp.float32)

  def _upsample(self, x: jax.Array, features: int, index: int) -> jax.Array:
    """Doubles height and width while changing the width to `features`.

    'transpose' is a 3x3 stride-2 transposed convolution (pix2pixHD's),
    named as flax names its own so that checkpoints read either way.
    """
    if self.upsampling == "transpose":
      return layers.UpsamplingConvTranspose(
          features,
          use_bias=layers.conv_bias(self.norm),
          dtype=self.dtype,
          form=self.upsampling_form,
          name=f"ConvTranspose_{index}",
      )(x)
    batch, height, width, channels = x.shape
    x = jax.image.resize(
        x, (batch, 2 * height, 2 * width, channels), method="nearest"
    )
    return layers.ReflectConv(
        features, 3, use_bias=layers.conv_bias(self.norm), dtype=self.dtype
    )(x)


def _with_side_input(x: jax.Array, side_input: jax.Array | None) -> jax.Array:
  """`x` with `side_input` averaged down to its size appended, if any."""
  if side_input is None:
    return x
  factor = side_input.shape[1] // x.shape[1]
  if factor > 1:
    side_input = nn.avg_pool(side_input, (factor, factor), (factor, factor))
  return jnp.concatenate([x, side_input.astype(x.dtype)], axis=-1)


def _generator(network: "SPNet | SGNet", out_features: int) -> nn.Module:
  """The global generator inside `network`, rematerialised as it asks.

  The explicit name keeps the parameter tree the same whatever `remat` is.
  """
  generator_class = layers.maybe_remat(GlobalGenerator, network.remat)
  return generator_class(
      out_features,
      **network.generator,
      dtype=network.dtype,
      name="GlobalGenerator_0",
  )


def hide_hole(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Zeroes `x` inside the hole (mask 1), so the hole's content is unseen."""
  return x * (1.0 - mask)


class SPNet(nn.Module):
  """Segmentation prediction: label logits for the whole image.

  Input: the corrupted image, the one-hot labels of the known region (S0) and
  the mask. Output: logits [B, H, W, num_classes].
  """

  num_classes: int
  generator: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32
  remat: str = "none"

  @nn.compact
  def __call__(
      self, image: jax.Array, known_labels: jax.Array, mask: jax.Array
  ) -> jax.Array:
    inputs = jnp.concatenate(
        [hide_hole(image, mask), hide_hole(known_labels, mask), mask],
        axis=-1,
    )
    return _generator(self, self.num_classes)(inputs)


class SGNet(nn.Module):
  """Segmentation guidance: an image in [-1, 1] rendered from labels.

  Input: the corrupted image, a complete label map (one-hot or class
  probabilities, known region and hole alike) and the mask. With `guidance`
  'none' the label map is not read at all: the same generator sees only the
  corrupted image and the mask. `label_injection` (one of
  `LABEL_INJECTIONS`) says where the generator reads the labels.
  """

  generator: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32
  remat: str = "none"
  guidance: str = "labels"
  label_injection: str = "input"

  @nn.compact
  def __call__(
      self, image: jax.Array, labels: jax.Array, mask: jax.Array
  ) -> jax.Array:
    check_guidance(self.guidance)
    check_label_injection(self.label_injection)
    guided = self.guidance == "labels"
    guide = [labels] if guided else []
    inputs = jnp.concatenate([hide_hole(image, mask), *guide, mask], axis=-1)
    at_decoder = guided and self.label_injection == "decoder"
    side_input = labels if at_decoder else None
    return jnp.tanh(_generator(self, image.shape[-1])(inputs, side_input))


def check_guidance(guidance: str) -> None:
  """Refuses a `config.model.guidance` that is not one of `GUIDANCES`."""
  if guidance not in GUIDANCES:
    raise ValueError(
        f"Unknown config.model.guidance {guidance!r}; choose one of"
        f" {GUIDANCES}."
    )


def check_label_injection(label_injection: str) -> None:
  """Refuses a `config.model.label_injection` not in `LABEL_INJECTIONS`."""
  if label_injection not in LABEL_INJECTIONS:
    raise ValueError(
        f"Unknown config.model.label_injection {label_injection!r}; choose"
        f" one of {LABEL_INJECTIONS}."
    )


def composite_labels(
    predicted: jax.Array, known: jax.Array, mask: jax.Array
) -> jax.Array:
  """Known one-hot labels outside the hole, `predicted` inside, exactly."""
  return jnp.where(mask > 0, predicted, known)


def composite_image(
    generated: jax.Array, image: jax.Array, mask: jax.Array
) -> jax.Array:
  """Known pixels outside the hole, `generated` inside, exactly."""
  return jnp.where(mask > 0, generated, image)


def straight_through_one_hot(probabilities: jax.Array) -> jax.Array:
  """One-hot of the argmax forward, the gradient of `probabilities` backward.

  A discriminator shown real one-hot maps and soft predicted maps can tell them
  apart by their values alone (a soft map is never exactly 0 or 1) and then
  teaches the generator nothing about layouts. Feeding it this instead makes a
  predicted map as one-hot as a real one while gradients still reach SP-Net
  through the probabilities.
  """
  hard = jax.nn.one_hot(
      jnp.argmax(probabilities, axis=-1),
      probabilities.shape[-1],
      dtype=probabilities.dtype,
  )
  return probabilities + jax.lax.stop_gradient(hard - probabilities)
