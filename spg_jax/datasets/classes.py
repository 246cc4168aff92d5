"""Class tables: the names and display colours of a dataset's label ids.

A label map anywhere in spg_jax holds int32 ids in [0, num_classes); a
`ClassTable` says what each id means and how to draw it. The synthetic street
scenes and Cityscapes share `CITYSCAPES_CATEGORIES`, the 8 Cityscapes
categories that SPG-Net groups the Cityscapes labels into.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ClassTable:
  """Names and RGB colours of the classes of one labelling, indexed by id."""

  names: tuple[str, ...]
  colors: tuple[tuple[int, int, int], ...]

  def __post_init__(self):
    if len(self.names) != len(self.colors):
      raise ValueError(
          f"A class table needs one colour per name; got {len(self.names)}"
          f" names and {len(self.colors)} colours."
      )

  @property
  def num_classes(self) -> int:
    return len(self.names)

  def index(self, name: str) -> int:
    """Returns the id of the class called `name`."""
    return self.names.index(name)

  def palette(self) -> np.ndarray:
    """Returns the colours as a uint8 array of shape [num_classes, 3]."""
    return np.asarray(self.colors, dtype=np.uint8)

  def colorize(self, labels: np.ndarray) -> np.ndarray:
    """Maps an integer label map [..., H, W] to a uint8 RGB image [..., H, W, 3]."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
      raise ValueError(
          f"Label ids must lie in [0, {self.num_classes}); got values in"
          f" [{labels.min()}, {labels.max()}]."
      )
    return self.palette()[labels]


# The 8 Cityscapes categories, in the order of their official category ids.
# Each colour is that of the category's most common label in the official
# Cityscapes palette (road for flat, building for construction, ...).
CITYSCAPES_CATEGORIES = ClassTable(
    names=(
        "void",
        "flat",
        "construction",
        "object",
        "nature",
        "sky",
        "human",
        "vehicle",
    ),
    colors=(
        (0, 0, 0),
        (128, 64, 128),
        (70, 70, 70),
        (153, 153, 153),
        (107, 142, 35),
        (70, 130, 180),
        (220, 20, 60),
        (0, 0, 142),
    ),
)

CLASS_TABLES = {"cityscapes_categories": CITYSCAPES_CATEGORIES}


def get_class_table(name: str) -> ClassTable:
  """Returns the class table registered as `name` (config.data.classes)."""
  try:
    return CLASS_TABLES[name]
  except KeyError:
    raise ValueError(
        f"Unknown class table {name!r} (config.data.classes); known ones:"
        f" {sorted(CLASS_TABLES)}."
    ) from None
