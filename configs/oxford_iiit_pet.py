r"""SPG-Net on the Oxford-IIIT pets, with their pet / background trimaps.

An example of any TFDS dataset with an image and a segmentation feature:
TFDS downloads it by itself (about 800 MB) on the first run. The trimap's
stored values 1 (pet), 2 (background) and 3 (outline) are mapped to the
classes of `oxford_pet_trimap`; images are scaled so their shorter side is
256 and cropped square (at random in training, centrally in evaluation).

  python -m spg_jax.main --config=configs/oxford_iiit_pet.py --workdir=/tmp/spg_pets

`--config=configs/oxford_iiit_pet.py:tiny` runs the same data and code for
seconds.
"""

import ml_collections

from configs import default

NUM_TRAIN_EXAMPLES = 3680


def get_config(variant: str | None = None) -> ml_collections.ConfigDict:
  """Returns the Oxford pets config; `variant='tiny'` for a smoke test."""
  config = default.get_config()
  config.data.name = "oxford_iiit_pet"
  config.data.label_key = "segmentation_mask"
  config.data.id_key = "file_name"
  config.data.classes = "oxford_pet_trimap"
  config.data.label_map = "oxford_pet_trimap_values"
  config.data.resize = "crop"
  config.data.train_split = "train"
  config.data.eval_split = "test"
  # Half the paper's epochs (our choice), each phase's rate decaying over
  # its last half.
  default.set_epoch_schedule(
      config,
      NUM_TRAIN_EXAMPLES,
      network_epochs=100,
      network_decay_epochs=50,
      joint_epochs=10,
      joint_decay_epochs=5,
  )
  default.apply_variant(config, variant)
  return config
