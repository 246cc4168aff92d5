"""A run's data, resolved once: the checked config.data, its builder, its labels.

`DataSource.resolve(config.data)` checks the data config (a ValueError names
the key at fault), builds the dataset if it is not built yet (a
`preparation.DataError` names the missing or broken file), and looks up the
class table and the map from stored label values to class ids. A run
resolves its data once and hands the `DataSource` to everything that reads
the data: the training and evaluation iterators, the sample grids,
`inspect_data` and the benchmark's input mode.
"""

import dataclasses

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from spg_jax.data import classes
from spg_jax.data import labelling
from spg_jax.data import preparation

RESIZE_MODES = ("squash", "crop")


def check_data_config(data_config: ml_collections.ConfigDict) -> np.ndarray:
  """Checks config.data without reading any file; returns its label lookup.

  Raises:
    ValueError: naming the bad config.data value and how to fix it.
  """
  if data_config.resize not in RESIZE_MODES:
    raise ValueError(
        f"Unknown config.data.resize={data_config.resize!r}; choose one of"
        f" {RESIZE_MODES}."
    )
  return label_lookup(data_config)


def label_lookup(data_config: ml_collections.ConfigDict) -> np.ndarray:
  """Raw label value -> class id, `labelling.UNMAPPED` for values not allowed.

  The label map (or, without one, the identity on the class ids) says what
  each raw value becomes; `config.data.extra_label_value` admits one more raw
  value that the map does not list and turns it into the class id
  `config.data.extra_label_value_class`.
  """
  num_classes = classes.get_class_table(data_config.classes).num_classes
  if data_config.label_map is None:
    lookup = np.arange(num_classes, dtype=np.int32)
  else:
    label_map = classes.get_label_map(data_config.label_map)
    if label_map.classes != data_config.classes:
      raise ValueError(
          f"config.data.label_map={data_config.label_map!r} maps into the"
          f" classes {label_map.classes!r}, but config.data.classes is"
          f" {data_config.classes!r}; make them agree."
      )
    lookup = label_map.lookup()
  value = data_config.extra_label_value
  class_id = data_config.extra_label_value_class
  if (value is None) != (class_id is None):
    raise ValueError(
        f"config.data.extra_label_value={value} and"
        f" config.data.extra_label_value_class={class_id} go together: set"
        " both (a raw value and the class id it becomes) or neither."
    )
  if value is None:
    return lookup
  if value < 0:
    raise ValueError(
        f"config.data.extra_label_value={value} must be a raw label value,"
        " >= 0."
    )
  if value < len(lookup) and lookup[value] != labelling.UNMAPPED:
    raise ValueError(
        f"config.data.extra_label_value={value} already becomes class"
        f" {lookup[value]} of {data_config.classes!r}; it admits a value"
        " that the label map does not list."
    )
  if not 0 <= class_id < num_classes:
    raise ValueError(
        f"config.data.extra_label_value_class={class_id} must be a class id"
        f" of {data_config.classes!r}, in [0, {num_classes})."
    )
  size = max(len(lookup), value + 1)
  lookup = np.pad(
      lookup, [0, size - len(lookup)], constant_values=labelling.UNMAPPED
  )
  lookup[value] = class_id
  return lookup


# eq=False: the label lookup is an array, which has no single truth value.
@dataclasses.dataclass(frozen=True, eq=False)
class DataSource:
  """The data of a run, checked and prepared.

  Attributes:
    config: a frozen copy of the checked config.data.
    builder: the TFDS builder of the prepared dataset.
    class_table: the classes the labels hold.
    label_lookup: stored label value -> class id (read-only), as
      `label_lookup` makes it.
  """

  config: ml_collections.FrozenConfigDict
  builder: tfds.core.DatasetBuilder
  class_table: labelling.ClassTable
  label_lookup: np.ndarray

  @classmethod
  def resolve(cls, data_config: ml_collections.ConfigDict) -> "DataSource":
    """Checks `data_config`, then builds its dataset if needed.

    Raises:
      ValueError: a bad config.data value, named; checked before any file
        is read.
      preparation.DataError: the dataset's files are missing or broken.
    """
    lookup = check_data_config(data_config)
    lookup.setflags(write=False)
    return cls(
        config=ml_collections.FrozenConfigDict(data_config),
        builder=preparation.prepare(data_config),
        class_table=classes.get_class_table(data_config.classes),
        label_lookup=lookup,
    )
