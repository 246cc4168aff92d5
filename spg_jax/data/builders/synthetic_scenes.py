"""TFDS builder for the synthetic street scenes: the embedded default dataset.

Importing this module registers `synthetic_scenes` with TFDS:

  import tensorflow_datasets as tfds
  import spg_jax.data.builders.synthetic_scenes  # Registers the builder.

  ds = tfds.load('synthetic_scenes/s64', split='train')

Nothing is downloaded: every example is rendered by
`street_scenes.render_scene`, so a build needs only CPU time (seconds for
`s64`). Example i of split s comes from `np.random.default_rng([seed, s, i])`
(s = 0 for train, 1 for test), so builds are deterministic and any example can
be re-rendered on its own. One seed renders the same scene at every size, so
`s32`, `s64`, `s128` and `s256` hold the same streets at different resolutions.
"""

import dataclasses
import inspect

import numpy as np
import tensorflow_datasets as tfds

from spg_jax.data.builders import street_scenes
from spg_jax.data.cityscapes_labels import CITYSCAPES_CATEGORIES

_SPLITS = ("train", "test")  # Position = the split index in the seed.

_CITATION = """\
@inproceedings{song2018spgnet,
  title = {{SPG-Net}: Segmentation Prediction and Guidance Network for Image
           Inpainting},
  author = {Song, Yuhang and Yang, Chao and Shen, Yeji and Wang, Peng and
            Huang, Qin and Kuo, C.-C. Jay},
  booktitle = {British Machine Vision Conference (BMVC)},
  year = {2018},
}
@inproceedings{cordts2016cityscapes,
  title = {The {Cityscapes} Dataset for Semantic Urban Scene Understanding},
  author = {Cordts, Marius and Omran, Mohamed and Ramos, Sebastian and
            Rehfeld, Timo and Enzweiler, Markus and Benenson, Rodrigo and
            Franke, Uwe and Roth, Stefan and Schiele, Bernt},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition
               (CVPR)},
  year = {2016},
}"""


@dataclasses.dataclass(eq=False)
class SyntheticScenesConfig(tfds.core.BuilderConfig):
  """A size and number of scenes.

  Attributes:
    image_size: height and width of images and label maps, in pixels.
    num_train: number of examples in the train split.
    num_test: number of examples in the test split.
    seed: the first entry of every example's generator seed.
  """

  image_size: int = 64
  num_train: int = 3000
  num_test: int = 256
  seed: int = 0


def _config(name: str, image_size: int, num_train: int,
            num_test: int) -> SyntheticScenesConfig:
  return SyntheticScenesConfig(
      name=name,
      description=(f"{image_size}x{image_size} pixels, {num_train} train and"
                   f" {num_test} test scenes."),
      image_size=image_size,
      num_train=num_train,
      num_test=num_test)


class SyntheticScenes(tfds.core.GeneratorBasedBuilder):
  """Procedural street scenes labelled with the 8 Cityscapes categories.

  Streets seen from a car, drawn with one pinhole camera: sky, building
  facades with window grids, a road with lane markings between sidewalks,
  grass, trees, poles with signs and traffic lights, pedestrians, cars and
  sometimes the ego-vehicle's hood. Each pixel's label is a Cityscapes
  category (void, flat, construction, object, nature, sky, human, vehicle),
  the 8 classes SPG-Net groups Cityscapes into. Textures vary within each
  class; boundaries between classes are sharp and the labels agree with the
  image at every pixel, so the labels inside a hole say much about its pixels.

  The dataset needs no download and stands in for Cityscapes in tests, demos
  and the default configuration.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      _config("s64", 64, 3000, 256),  # The default: the first config.
      _config("s128", 128, 3000, 256),
      _config("s256", 256, 2000, 200),
      _config("s32", 32, 200, 64),  # For fast tests.
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=inspect.cleandoc(SyntheticScenes.__doc__),
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(size, size, 3)),
            "label": tfds.features.Image(shape=(size, size, 1)),
            "image_id": tfds.features.Text(),
        }),
        supervised_keys=("image", "label"),
        citation=_CITATION,
        metadata=tfds.core.MetadataDict(
            class_names=list(CITYSCAPES_CATEGORIES.names)),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    """Returns one generator per split; there is nothing to download."""
    del dl_manager
    config = self.builder_config
    return {
        "train": self._generate_examples("train", config.num_train),
        "test": self._generate_examples("test", config.num_test),
    }

  def _generate_examples(self, split: str, num_examples: int):
    """Yields (key, example), rendering example i from [seed, split, i]."""
    config = self.builder_config
    split_index = _SPLITS.index(split)
    for i in range(num_examples):
      rng = np.random.default_rng([config.seed, split_index, i])
      image, label = street_scenes.render_scene(rng, config.image_size)
      image_id = f"{split}_{i:06d}"
      yield image_id, {
          "image": image,
          "label": label[..., None],
          "image_id": image_id,
      }
