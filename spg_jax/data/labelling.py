"""The data types of a labelling: class tables and raw-label maps.

A label map anywhere in spg_jax holds int32 ids in [0, num_classes); a
`ClassTable` says what each id means and how to draw it. Datasets store other
raw values (Cityscapes stores its 34 labelIds, Oxford pets 1..3); a `LabelMap`
says which class id each raw value becomes. Both are plain data, free of
TensorFlow, so the models can read the number of classes.
"""

import colorsys
import dataclasses

import numpy as np

# Marks a raw value that a `LabelMap` does not map: an error in the data.
UNMAPPED = -1


@dataclasses.dataclass(frozen=True)
class ClassTable:
  """Names and RGB colours of the classes of one labelling, indexed by id.

  Attributes:
    names: each class's name.
    colors: each class's RGB colour.
    void: the name of the class that the dataset's benchmark leaves out of
      its scores (Cityscapes' 'void'), or None if every class is scored.
  """

  names: tuple[str, ...]
  colors: tuple[tuple[int, int, int], ...]
  void: str | None = None

  def __post_init__(self):
    if len(self.names) != len(self.colors):
      raise ValueError(
          f"A class table needs one colour per name; got {len(self.names)}"
          f" names and {len(self.colors)} colours."
      )
    if self.void is not None and self.void not in self.names:
      raise ValueError(
          f"The void class {self.void!r} is not one of the classes"
          f" {self.names}."
      )

  @property
  def void_id(self) -> int | None:
    """The id of the void class, or None if the table has none."""
    return None if self.void is None else self.index(self.void)

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


@dataclasses.dataclass(frozen=True)
class LabelMap:
  """Which class id of the table `classes` each raw dataset value becomes.

  Attributes:
    classes: the registered name of the class table mapped into.
    targets: (raw value, class id) pairs; raw values not listed are errors.
  """

  classes: str
  targets: tuple[tuple[int, int], ...]

  def lookup(self) -> np.ndarray:
    """Returns an int32 array: entry r is the class id of raw value r.

    Raw values the map does not list hold `UNMAPPED`.
    """
    table = np.full([max(raw for raw, _ in self.targets) + 1], UNMAPPED)
    for raw, class_id in self.targets:
      table[raw] = class_id
    return table.astype(np.int32)


def distinct_colors(count: int) -> tuple[tuple[int, int, int], ...]:
  """`count` colours far apart in hue, for tables with no official palette.

  Hues step by the golden ratio, so neighbouring ids never look alike, and
  saturation and value alternate so that many classes stay distinguishable.
  """
  golden_ratio = (5**0.5 - 1) / 2
  colors = []
  for index in range(count):
    hue = (index * golden_ratio) % 1.0
    saturation = (0.55, 0.9)[index % 2]
    value = (0.95, 0.7, 0.85)[index % 3]
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    colors.append((round(red * 255), round(green * 255), round(blue * 255)))
  return tuple(colors)
