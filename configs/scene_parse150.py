r"""SPG-Net on ADE20K scenes through TFDS's scene_parse150.

TFDS downloads it by itself (about 1 GB) on the first run. Its `annotation`
is the Places Challenge instance annotation: the red channel holds one of
100 object categories, 0 for everything else (walls, floors, sky, ...), so
the classes are `ade20k_objects` ('other' + the 100) read from channel 0.
Images are scaled so their shorter side is 256 and cropped square; with
20,210 training scenes of varied size the decoded split is not cached in
memory. Evaluation uses TFDS's `test` split (the 2,000 ADE20K validation
scenes).

  python -m spg_jax.main --config=configs/scene_parse150.py --workdir=/tmp/spg_ade

`--config=configs/scene_parse150.py:tiny` runs the same data and code for
seconds.
"""

import ml_collections

from configs import default

NUM_TRAIN_EXAMPLES = 20210


def get_config(variant: str | None = None) -> ml_collections.ConfigDict:
  """Returns the scene_parse150 config; `variant='tiny'` for a smoke test."""
  config = default.get_config()
  config.data.name = "scene_parse150"
  config.data.label_key = "annotation"
  config.data.label_channel = 0
  config.data.id_key = None
  config.data.classes = "ade20k_objects"
  config.data.resize = "crop"
  config.data.cache = False
  config.data.train_split = "train"
  config.data.eval_split = "test"
  # 30 epochs per network over the 20,210 scenes, 3 jointly (our choice);
  # each phase's rate decays over its last half.
  default.set_epoch_schedule(
      config,
      NUM_TRAIN_EXAMPLES,
      network_epochs=30,
      network_decay_epochs=15,
      joint_epochs=3,
      joint_decay_epochs=1.5,
  )
  default.apply_variant(config, variant)
  return config
