"""The hole settings of a config, apart from the TensorFlow that draws them.

Config files import this module, so a config loads on a machine without
TensorFlow (a GPU host running the benchmark); `spg_jax.data.masks` draws the
holes these settings describe.
"""

import ml_collections


def default_mask_config() -> ml_collections.ConfigDict:
  """The paper's holes: one rectangle, sides 1/8..1/2 of the image side.

  The centre and brush fields take effect once a config lists those kinds.
  """
  config = ml_collections.ConfigDict()
  config.kinds = ("rectangle",)
  config.probabilities = (1.0,)
  config.rectangle_min_fraction = 1 / 8
  config.rectangle_max_fraction = 1 / 2
  config.center_fraction = 0.5
  config.brush_max_strokes = 4
  config.brush_max_vertices = 6
  config.brush_min_width_fraction = 1 / 16
  config.brush_max_width_fraction = 1 / 8
  config.brush_max_step_fraction = 1 / 4
  return config
