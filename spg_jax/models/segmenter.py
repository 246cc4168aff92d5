"""DeepLabv3+ segmenter: class logits for the known region of a corrupted image.

SPG-Net labels the corrupted image with DeepLabv3+ (Chen et al., ECCV 2018),
and SP-Net then predicts the hole's labels from those of the known region.
The network here is DeepLabv3+ on a ResNet backbone of bottleneck blocks:
a stem (7x7 stride-2 convolution, 3x3 stride-2 max pool), four stages whose
later ones trade stride for dilation (atrous convolution) to end at
`output_stride`, atrous spatial pyramid pooling (ASPP) on the last stage, and
a decoder that refines the ASPP output with the stride-4 features of the
first stage before upsampling bilinearly to the input size.

Our choices, where DeepLabv3+ differs:
  * The input is the image with its hole zeroed plus the mask as a 4th
    channel, so the logits never depend on what the hole holds.
  * GroupNorm, not BatchNorm: the train steps keep no batch statistics, and
    GroupNorm normalises each example on its own. A backbone started from
    an ImageNet ResNet-50 (`config.model.segmenter.backbone_weights`)
    instead keeps each batch normalisation as the fixed per-channel scale
    and bias that its ImageNet statistics make (`Affine`; both trained
    from there), reads the image normalised as ImageNet's networks do, and
    starts its mask channel's stem weights at 0 (so it starts as the
    ImageNet network, whose layers in the paper-size config are exactly
    torchvision's ResNet-50, the last stage dilated; see
    spg_jax.pretrained.resnet).
  * No dropout, for the same stateless steps.
  * Each 3x3 bottleneck convolution carries its block's stride, as
    torchvision's ResNet does, and every block of a dilated stage uses the
    stage's dilation.

Submodule names follow torchvision's ResNet layout so that pretrained weights
can be mapped onto the backbone: backbone/stem is conv1 and bn1,
backbone/stage{i}_block{j} is layer{i}.{j}, whose conv1..conv3 (each a
`ConvNorm`: conv, norm) are its convN and bnN and whose projection is its
downsample.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from spg_jax.models import generators
from spg_jax.models import layers
from spg_jax.pretrained import imagenet

# The dilation of each of the four stages for each output stride allowed.
# A stage after the first halves the resolution unless it is dilated; the
# first dilated stage keeps the resolution of the one before it.
STAGE_DILATIONS = {16: (1, 1, 1, 2), 8: (1, 1, 2, 4)}
# The stride of the stem (convolution and max pool), that of the first
# stage's output, which the decoder reads.
_STEM_STRIDE = 4
# A bottleneck block's output width over its inner width.
_EXPANSION = 4


def group_count(channels: int, groups: int) -> int:
  """The largest divisor of `channels` that is at most `groups`.

  GroupNorm needs a group count that divides the channels; the config's
  `norm_groups` (32, as in Wu and He's GroupNorm) does not divide every
  width (e.g. the decoder's 48 low-level channels), so it is clamped down.
  """
  return max(
      count
      for count in range(1, min(channels, groups) + 1)
      if channels % count == 0
  )


# How the backbone normalises: 'group', GroupNorm (ours, from scratch);
# 'affine', a per-channel scale and bias, into which the converter folds an
# ImageNet ResNet's batch normalisation with its fixed statistics.
BACKBONE_NORMS = ("group", "affine")


class Affine(nn.Module):
  """A per-channel scale and bias (frozen batch normalisation's form)."""

  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    width = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (width,))
    bias = self.param("bias", nn.initializers.zeros, (width,))
    return (x * scale + bias).astype(self.dtype)


class ConvNorm(nn.Module):
  """A convolution without bias, then GroupNorm or `Affine` (`norm`).

  Padding of `dilation * (kernel_size // 2)` on each side, as torchvision
  pads, so a strided convolution of an even size halves it exactly.
  """

  features: int
  kernel_size: int
  norm_groups: int
  stride: int = 1
  dilation: int = 1
  dtype: jnp.dtype = jnp.float32
  norm: str = "group"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pad = self.dilation * (self.kernel_size // 2)
    x = nn.Conv(
        self.features,
        (self.kernel_size, self.kernel_size),
        strides=self.stride,
        padding=((pad, pad), (pad, pad)),
        kernel_dilation=self.dilation,
        use_bias=False,
        dtype=self.dtype,
        name="conv",
    )(x)
    if self.norm == "affine":
      return Affine(dtype=self.dtype, name="norm")(x)
    return nn.GroupNorm(
        num_groups=group_count(self.features, self.norm_groups),
        dtype=self.dtype,
        name="norm",
    )(x)


class Bottleneck(nn.Module):
  """ResNet's bottleneck: 1x1 to `features`, 3x3, 1x1 to 4x `features`.

  The skip is projected (1x1 convolution and norm) when the block changes
  the width or the resolution.
  """

  features: int
  norm_groups: int
  stride: int = 1
  dilation: int = 1
  dtype: jnp.dtype = jnp.float32
  norm: str = "group"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out_features = self.features * _EXPANSION
    y = nn.relu(self._conv_norm(self.features, 1, name="conv1")(x))
    y = self._conv_norm(
        self.features, 3, self.stride, self.dilation, name="conv2"
    )(y)
    y = self._conv_norm(out_features, 1, name="conv3")(nn.relu(y))
    if self.stride != 1 or x.shape[-1] != out_features:
      x = self._conv_norm(out_features, 1, self.stride, name="projection")(x)
    return nn.relu(x + y)

  def _conv_norm(
      self,
      features: int,
      kernel_size: int,
      stride: int = 1,
      dilation: int = 1,
      *,
      name: str,
  ) -> ConvNorm:
    return ConvNorm(
        features,
        kernel_size,
        self.norm_groups,
        stride,
        dilation,
        dtype=self.dtype,
        norm=self.norm,
        name=name,
    )


class ResNet(nn.Module):
  """ResNet's stem and bottleneck stages, the last ones dilated.

  Returns the first stage's output (stride 4) and the last stage's
  (stride `output_stride`). `norm` is one of `BACKBONE_NORMS`.
  """

  stage_sizes: tuple[int, ...]
  base_features: int
  output_stride: int
  norm_groups: int
  dtype: jnp.dtype = jnp.float32
  norm: str = "group"

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = ConvNorm(
        self.base_features,
        7,
        self.norm_groups,
        stride=2,
        dtype=self.dtype,
        norm=self.norm,
        name="stem",
    )(x)
    x = nn.max_pool(
        nn.relu(x), (3, 3), strides=(2, 2), padding=((1, 1), (1, 1))
    )
    stage_outputs = []
    dilations = STAGE_DILATIONS[self.output_stride]
    for index, (size, dilation) in enumerate(zip(self.stage_sizes, dilations)):
      # A stage after the first halves the resolution, unless dilated.
      stride = 2 if index > 0 and dilation == 1 else 1
      for block in range(size):
        x = Bottleneck(
            self.base_features * 2**index,
            self.norm_groups,
            stride if block == 0 else 1,
            dilation,
            dtype=self.dtype,
            norm=self.norm,
            name=f"stage{index + 1}_block{block}",
        )(x)
      stage_outputs.append(x)
    return stage_outputs[0], stage_outputs[-1]


class ASPP(nn.Module):
  """Atrous spatial pyramid pooling, each branch `features` wide.

  A 1x1 convolution, a 3x3 convolution per rate in `rates`, and the
  image's mean through a 1x1 convolution, broadcast back over the image;
  concatenated and projected by a 1x1 convolution. Every convolution is
  followed by GroupNorm and ReLU.
  """

  features: int
  rates: tuple[int, ...]
  norm_groups: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branches = [self._conv_norm_relu(x, 1, name="conv1x1")]
    for index, rate in enumerate(self.rates):
      branches.append(
          self._conv_norm_relu(x, 3, rate, name=f"atrous{index}")
      )
    pooled = jnp.mean(x, axis=(1, 2), keepdims=True, dtype=jnp.float32)
    pooled = self._conv_norm_relu(pooled, 1, name="pooling")
    branches.append(
        jnp.broadcast_to(pooled, (*x.shape[:3], self.features))
    )
    return self._conv_norm_relu(
        jnp.concatenate(branches, axis=-1), 1, name="projection"
    )

  def _conv_norm_relu(
      self, x: jax.Array, kernel_size: int, dilation: int = 1, *, name: str
  ) -> jax.Array:
    return nn.relu(
        ConvNorm(
            self.features,
            kernel_size,
            self.norm_groups,
            dilation=dilation,
            dtype=self.dtype,
            name=name,
        )(x)
    )


class Decoder(nn.Module):
  """DeepLabv3+'s decoder: ASPP output and low-level features to logits.

  The low-level (stride 4) features go through a 1x1 convolution to
  `low_level_features`; the ASPP output, upsampled bilinearly to their
  size, is concatenated with them; two 3x3 convolutions of `features`
  refine the result and a 1x1 convolution gives the class logits.
  """

  num_classes: int
  low_level_features: int
  features: int
  norm_groups: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, high: jax.Array, low: jax.Array) -> jax.Array:
    low = nn.relu(self._conv_norm(self.low_level_features, 1, "low_level")(low))
    high = _resize(high, low.shape[1:3])
    x = jnp.concatenate([high, low], axis=-1)
    x = nn.relu(self._conv_norm(self.features, 3, "conv1")(x))
    x = nn.relu(self._conv_norm(self.features, 3, "conv2")(x))
    return nn.Conv(
        self.num_classes, (1, 1), dtype=self.dtype, name="logits"
    )(x)

  def _conv_norm(self, features: int, kernel_size: int, name: str) -> ConvNorm:
    return ConvNorm(
        features, kernel_size, self.norm_groups, dtype=self.dtype, name=name
    )


def _resize(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Bilinear resize of an NHWC tensor's height and width to `size`."""
  return jax.image.resize(x, (x.shape[0], *size, x.shape[-1]), "bilinear")


def size_multiple(output_stride: int) -> int:
  """Image sides must be multiples of this: the backbone divides them by
  `output_stride`, the decoder's features are at stride 4."""
  return math.lcm(output_stride, _STEM_STRIDE)


class DeepLabV3Plus(nn.Module):
  """ResNet backbone, ASPP and decoder; float32 logits at the input size.

  The fields are those of `config.model.segmenter` (configs/default.py),
  plus `num_classes` and the compute `dtype`.
  """

  num_classes: int
  stage_sizes: tuple[int, ...]
  base_features: int
  output_stride: int
  aspp_rates: tuple[int, ...]
  aspp_features: int
  low_level_features: int
  decoder_features: int
  norm_groups: int
  dtype: jnp.dtype = jnp.float32
  backbone_norm: str = "group"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    self._check(x.shape[1], x.shape[2])
    low, high = ResNet(
        self.stage_sizes,
        self.base_features,
        self.output_stride,
        self.norm_groups,
        dtype=self.dtype,
        norm=self.backbone_norm,
        name="backbone",
    )(x)
    high = ASPP(
        self.aspp_features,
        self.aspp_rates,
        self.norm_groups,
        dtype=self.dtype,
        name="aspp",
    )(high)
    logits = Decoder(
        self.num_classes,
        self.low_level_features,
        self.decoder_features,
        self.norm_groups,
        dtype=self.dtype,
        name="decoder",
    )(high, low)
    return _resize(logits.astype(jnp.float32), x.shape[1:3])

  def _check(self, height: int, width: int) -> None:
    """Refuses an output stride, stage count or image size it cannot use."""
    if self.output_stride not in STAGE_DILATIONS:
      raise ValueError(
          f"Unknown output_stride {self.output_stride}; choose one of"
          f" {tuple(STAGE_DILATIONS)}."
      )
    num_stages = len(STAGE_DILATIONS[self.output_stride])
    if len(self.stage_sizes) != num_stages:
      raise ValueError(
          f"stage_sizes must give the blocks of {num_stages} stages; got"
          f" {self.stage_sizes}."
      )
    factor = size_multiple(self.output_stride)
    if height % factor or width % factor:
      raise ValueError(
          f"The segmenter needs height and width divisible by {factor}"
          f" (output_stride={self.output_stride}); got {height}x{width}. Pad"
          " the input or choose a size that is a multiple."
      )


def uses_pretrained_backbone(config: ml_collections.ConfigDict) -> bool:
  """Whether `config.model.segmenter` starts its backbone from ImageNet
  (its `backbone_weights`, absent in configs saved before it existed)."""
  return bool(config.get("backbone_weights", ""))


def with_backbone(variables: dict, backbone: dict) -> dict:
  """The segmenter's `variables` with `backbone` as its backbone's params.

  Raises:
    ValueError: `backbone` is not shaped as the segmenter's backbone.
  """
  network = variables["params"]["DeepLabV3Plus_0"]
  shapes = lambda tree: jax.tree.map(jnp.shape, tree)
  if shapes(network["backbone"]) != shapes(backbone):
    raise ValueError(
        "The pretrained backbone's parameters are not shaped as the"
        " segmenter's backbone: is config.model.segmenter ResNet-50-sized?"
    )
  return {**variables, "params": {
      **variables["params"],
      "DeepLabV3Plus_0": {**network,
                          "backbone": jax.tree.map(jnp.asarray, backbone)},
  }}


class Segmenter(nn.Module):
  """DeepLabv3+ labelling the known region of a corrupted image.

  Zeroes the hole of the image itself, then reads it with the mask as a 4th
  input channel (our choice: the network knows where nothing is known), so
  the logits never depend on the hole's pixels. Image height and width must
  be multiples of the output stride (see `DeepLabV3Plus`).

  Attributes:
    num_classes: the number of classes, the logits' last axis.
    config: `config.model.segmenter` (configs/default.py).
    dtype: the compute dtype; parameters and logits are float32.
    remat: one of `layers.REMAT_POLICIES`, as SP-Net's.
  """

  num_classes: int
  config: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32
  remat: str = "none"

  @nn.compact
  def __call__(self, image: jax.Array, mask: jax.Array) -> jax.Array:
    """Returns float32 logits [B, H, W, num_classes].

    Args:
      image: [B, H, W, 3] in [-1, 1].
      mask: [B, H, W, 1], 1 in the hole.
    """
    hidden = generators.hide_hole(image, mask)
    pretrained = uses_pretrained_backbone(self.config)
    if pretrained:
      hidden = imagenet.normalise(hidden)
    inputs = jnp.concatenate([hidden, mask], axis=-1)
    # The explicit name keeps the parameter tree the same whatever `remat`.
    network_class = layers.maybe_remat(DeepLabV3Plus, self.remat)
    config = self.config
    return network_class(
        self.num_classes,
        stage_sizes=tuple(config.stage_sizes),
        base_features=config.base_features,
        output_stride=config.output_stride,
        aspp_rates=tuple(config.aspp_rates),
        aspp_features=config.aspp_features,
        low_level_features=config.low_level_features,
        decoder_features=config.decoder_features,
        norm_groups=config.norm_groups,
        dtype=self.dtype,
        backbone_norm="affine" if pretrained else "group",
        name="DeepLabV3Plus_0",
    )(inputs)
