"""Writes float32 state dicts as `torch.save` does (zip layout), without torch.

The full-size published files (AlexNet, VGG19, ...) are tens of megabytes,
too large to commit; tests that need one write it from seeded weights here,
in the layout tests/fixtures/torch/tensors_zip.pth shows torch writes: a
pickle (protocol 2) of an ordered dict whose tensors are
`torch._utils._rebuild_tensor_v2` calls on persistent storages, each
storage's bytes in `archive/data/<key>`. Test-only: the reader under test is
spg_jax.pretrained.torch_files.
"""

import collections
from collections.abc import Mapping
import dataclasses
import io
import pathlib
import pickle
import zipfile

import numpy as np


@dataclasses.dataclass(frozen=True)
class _Global:
  """A global the pickle names (torch's) without importing it."""

  module: str
  name: str

  def __call__(self, *args):
    """Callable, as the pickler requires of a reduction's function."""
    raise TypeError(f"{self.module}.{self.name} is only written by name.")


@dataclasses.dataclass(frozen=True)
class _Storage:
  key: str
  size: int


class _Pickler(pickle._Pickler):  # pylint: disable=protected-access
  """Python's pickler, writing `_Global`s by name and arrays as tensors."""

  def __init__(self, file):
    super().__init__(file, protocol=2)
    self.storages: dict[str, np.ndarray] = {}

  def save(self, obj, save_persistent_id=True):
    if isinstance(obj, _Global):
      self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
      return
    super().save(obj, save_persistent_id)

  def persistent_id(self, obj):
    if isinstance(obj, _Storage):
      return ("storage", _Global("torch", "FloatStorage"), obj.key, "cpu",
              obj.size)
    return None

  def reducer_override(self, obj):
    if not isinstance(obj, np.ndarray):
      return NotImplemented
    key = str(len(self.storages))
    self.storages[key] = np.ascontiguousarray(obj, "<f4")
    strides = tuple(stride // 4 for stride in self.storages[key].strides)
    return (_Global("torch._utils", "_rebuild_tensor_v2"),
            (_Storage(key, obj.size), 0, tuple(obj.shape), strides, False,
             collections.OrderedDict()))


def save(state: Mapping[str, np.ndarray], path: pathlib.Path) -> None:
  """Writes `state` (name -> array, saved as float32) to `path`."""
  data = io.BytesIO()
  pickler = _Pickler(data)
  pickler.dump(collections.OrderedDict(state))
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", data.getvalue())
    archive.writestr("archive/byteorder", "little")
    for key, array in pickler.storages.items():
      archive.writestr(f"archive/data/{key}", array.tobytes())
    archive.writestr("archive/version", "3\n")
