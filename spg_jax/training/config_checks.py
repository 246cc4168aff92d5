"""Checks of a config's model, schedule and batch keys, before any compiling.

Free of TensorFlow, so that the benchmark, which runs on accelerator hosts
without it, refuses the same bad configs as training does; training adds
the data checks of `data_source` (`loop.validate_config`).
"""

import ml_collections
from jax.sharding import Mesh

from spg_jax.models import generators
from spg_jax.models import layers
from spg_jax.models import segmenter
from spg_jax.models import space_to_depth
from spg_jax.models import spg
from spg_jax.pretrained import resnet
from spg_jax.runtime import host_cpu
from spg_jax.training import divergence
from spg_jax.training import losses
from spg_jax.training import perceptual
from spg_jax.training import schedules


def check_model_and_steps(
    config: ml_collections.ConfigDict, mesh: Mesh
) -> None:
  """Checks what would otherwise fail late, in tracing or compiling.

  Raises:
    ValueError: naming the config key at fault and how to fix it.
  """
  perceptual.check_config(config.loss, config.data.image_size)
  divergence.check_config(config.on_nonfinite)
  # Refuses cross_entropy_on_void=False with a table that has no void class.
  losses.excluded_cross_entropy_class(config.loss, config.data.classes)
  host_cpu.check_cpu_config(config.cpu)
  if config.dtype not in layers.DTYPES:
    raise ValueError(
        f"config.dtype={config.dtype!r} must be one of {layers.DTYPES}."
    )
  if config.model.remat not in layers.REMAT_POLICIES:
    raise ValueError(
        f"config.model.remat={config.model.remat!r} must be one of"
        f" {tuple(layers.REMAT_POLICIES)}."
    )
  schedules.check_schedule(config.schedule)
  generators.check_guidance(config.model.guidance)
  generators.check_label_injection(config.model.label_injection)
  spg.check_known_labels(config)
  _check_batch_sizes(config, mesh)
  if spg.has_segmenter(config):
    _check_segmenter(config)
  for name in ("sp_generator", "sg_generator"):
    factor = 2 ** config.model[name].num_downsamplings
    if config.data.image_size % factor:
      raise ValueError(
          f"config.data.image_size={config.data.image_size} must be a multiple"
          f" of 2**config.model.{name}.num_downsamplings={factor}."
      )
    form = config.model[name].output_conv_form
    if form not in space_to_depth.CONV_FORMS:
      raise ValueError(
          f"config.model.{name}.output_conv_form={form!r} must be one of"
          f" {space_to_depth.CONV_FORMS}."
      )
    form = config.model[name].upsampling_form
    if form not in layers.UPSAMPLING_FORMS:
      raise ValueError(
          f"config.model.{name}.upsampling_form={form!r} must be one of"
          f" {layers.UPSAMPLING_FORMS}."
      )


def _check_segmenter(config: ml_collections.ConfigDict) -> None:
  """The segmenter's output stride is one it has, and fits the image size;
  a backbone started from ImageNet has ResNet-50's sizes."""
  model = config.model.segmenter
  if segmenter.uses_pretrained_backbone(model) and (
      tuple(model.stage_sizes) != resnet.STAGE_SIZES
      or model.base_features != resnet.BASE_FEATURES):
    raise ValueError(
        f"config.model.segmenter.backbone_weights={model.backbone_weights!r}"
        " starts the backbone from ImageNet's ResNet-50, which has"
        f" stage_sizes={resnet.STAGE_SIZES} and"
        f" base_features={resnet.BASE_FEATURES}, but the config has"
        f" {tuple(model.stage_sizes)} and {model.base_features}. Use"
        " ResNet-50's sizes or set --config.model.segmenter.backbone_weights=''."
    )
  output_stride = model.output_stride
  if output_stride not in segmenter.STAGE_DILATIONS:
    raise ValueError(
        f"config.model.segmenter.output_stride={output_stride} must be one of"
        f" {tuple(segmenter.STAGE_DILATIONS)}."
    )
  factor = segmenter.size_multiple(output_stride)
  if config.data.image_size % factor:
    raise ValueError(
        f"config.data.image_size={config.data.image_size} must be a multiple"
        f" of {factor}, which the segmenter needs at"
        f" config.model.segmenter.output_stride={output_stride}."
    )


def _check_batch_sizes(config: ml_collections.ConfigDict, mesh: Mesh) -> None:
  """Each global batch splits evenly over the mesh's devices."""
  batch_sizes = {
      "batch_size": config.batch_size,
      "eval.batch_size": config.eval.batch_size,
  }
  on_cpu = mesh.devices.flat[0].platform == "cpu"
  how_many = " (config.cpu.devices sets how many a CPU has)" if on_cpu else ""
  for key, size in batch_sizes.items():
    if size <= 0 or size % mesh.size:
      raise ValueError(
          f"config.{key}={size} must be a positive multiple of the"
          f" {mesh.size} devices{how_many}."
      )
