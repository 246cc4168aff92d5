"""Reads the weights in PyTorch files (.pth, .pt) as NumPy arrays, no torch.

Published weights (torchvision's ImageNet networks, LPIPS's linear heads,
the FID Inception) ship as `torch.save` files: a pickle of a state dict whose
tensors point into raw storages. Unpickling such a file with `pickle`, or
with `torch.load` outside its weights-only mode, calls whatever functions
the file names, so a malicious file runs code. This reader's unpickler knows
the few globals a state dict needs (an ordered dict, the tensor and
parameter rebuilders, the storage types) and refuses every other, naming it
(`UnsafeFileError`); it imports nothing from the file and needs no torch.

Both layouts of `torch.save` are read:

- zip (torch 1.6 and later): `<archive>/data.pkl`, the pickled object;
  `<archive>/data/<key>`, each storage's raw bytes; `<archive>/byteorder`,
  'little' or 'big' (absent in older zips: little).
- legacy (before 1.6; LPIPS's heads are in it): five pickles in a row (a
  magic number, the protocol version, the system's sizes and byte order,
  the object, the storage keys), then each storage in key order as its
  element count (int64) and its bytes.

A tensor is a view of a storage (offset, shape, strides); each comes back as
its own contiguous array. A file cut short, or a storage smaller than a
tensor on it, is reported with the file and the tensor's name
(`TorchFileError`).
"""

import collections
from collections.abc import Mapping
import dataclasses
import io
import pickle
import struct
from typing import Any, BinaryIO
import zipfile

from etils import epath
import ml_dtypes
import numpy as np

# torch.serialization's marker of the legacy layout, its first pickle.
_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001

# The storage types a state dict's pickle names, by their dtype.
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype(np.float64),
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}


class TorchFileError(ValueError):
  """A PyTorch file that cannot be read: not one, cut short or inconsistent."""


class UnsafeFileError(TorchFileError):
  """A PyTorch file naming a global that a file of weights never needs."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
  """What the unpickler returns for `torch.FloatStorage` and its kind."""

  name: str
  dtype: np.dtype


@dataclasses.dataclass
class _Storage:
  """A storage named in the pickle; `data` is filled once its bytes are read."""

  key: str
  dtype: np.dtype
  numel: int
  data: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class _PendingTensor:
  """A tensor's view of a storage, made into an array once storages are read."""

  storage: _Storage
  offset: int
  shape: tuple[int, ...]
  strides: tuple[int, ...]

  def materialise(self, where: str) -> np.ndarray:
    """The tensor as a contiguous array; `where` names it in errors."""
    data = self.storage.data
    assert data is not None, "storages are read before tensors are made"
    if 0 in self.shape:
      return np.zeros(self.shape, data.dtype)
    needed = self.offset + 1 + sum(
        (size - 1) * stride for size, stride in zip(self.shape, self.strides)
    )
    if needed > data.size:
      raise TorchFileError(
          f"{where} needs {needed} elements of storage {self.storage.key!r},"
          f" which holds {data.size}: the file is inconsistent or cut short."
      )
    view = np.lib.stride_tricks.as_strided(
        data[self.offset:],
        shape=self.shape,
        strides=[stride * data.itemsize for stride in self.strides],
        writeable=False,
    )
    return np.ascontiguousarray(view)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad, backward_hooks,
    metadata=None,
):
  """torch._utils._rebuild_tensor_v2: a view of `storage`."""
  del requires_grad, backward_hooks, metadata
  if not isinstance(storage, _Storage):
    raise TorchFileError(f"A tensor is built on {type(storage).__name__},"
                         " not on a storage.")
  return _PendingTensor(storage, int(storage_offset), tuple(size),
                        tuple(stride))


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
  """torch._utils._rebuild_parameter(_with_state): the parameter's tensor."""
  del requires_grad, backward_hooks, state
  return data


# Every global this reader lets a pickle name, and what it stands for.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{
        ("torch", name): _StorageType(name, dtype)
        for name, dtype in _STORAGE_DTYPES.items()
    },
}


class _Unpickler(pickle.Unpickler):
  """Builds a state dict from a pickle, refusing all other globals."""

  def __init__(self, file: BinaryIO, path: str, byteorder: str):
    super().__init__(file)
    self.path = path
    self.byteorder = byteorder
    self.storages: dict[str, _Storage] = {}

  def find_class(self, module: str, name: str) -> Any:
    try:
      return _ALLOWED_GLOBALS[(module, name)]
    except KeyError:
      raise UnsafeFileError(
          f"{self.path} names the global {module}.{name}, which a file of"
          " weights never needs; it is refused unread (the file may be"
          " malicious, or hold more than a state dict of tensors)."
      ) from None

  def persistent_load(self, pid: Any) -> _Storage:
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
      raise UnsafeFileError(
          f"{self.path} refers to {str(pid)[:80]!r}, not to a storage;"
          " it is refused."
      )
    storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
    if not isinstance(storage_type, _StorageType):
      raise TorchFileError(f"{self.path}: storage {key!r} has no known type.")
    if len(pid) > 5 and pid[5] is not None:
      raise TorchFileError(
          f"{self.path}: storage {key!r} is a view of another storage, a"
          " layout of torch before 0.4 that this reader does not handle."
      )
    if key not in self.storages:
      dtype = storage_type.dtype.newbyteorder(
          "<" if self.byteorder == "little" else ">")
      self.storages[key] = _Storage(key, dtype, numel)
    return self.storages[key]


def _materialise(tree: Any, path: str, where: str = "") -> Any:
  """`tree` with every pending tensor made into an array."""
  if isinstance(tree, _PendingTensor):
    return tree.materialise(f"{path}: tensor {where or '(the whole file)'}")
  if isinstance(tree, Mapping):
    return {
        key: _materialise(value, path, f"{where}.{key}" if where else str(key))
        for key, value in tree.items()
    }
  if isinstance(tree, (list, tuple)):
    return type(tree)(
        _materialise(value, path, f"{where}[{index}]")
        for index, value in enumerate(tree)
    )
  return tree


def _native(array: np.ndarray) -> np.ndarray:
  """`array` in the machine's byte order, for JAX and Orbax."""
  return array.astype(array.dtype.newbyteorder("="), copy=False)


def _read_zip(file: BinaryIO, path: str) -> Any:
  """The object of a zip-layout file, its storages read."""
  with zipfile.ZipFile(file) as archive:
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("/data.pkl")
               and name.count("/") == 1]
    if len(pickles) != 1:
      raise TorchFileError(
          f"{path} is a zip file but not one torch.save wrote: it has"
          f" {len(pickles)} <archive>/data.pkl entries, not one."
      )
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if f"{prefix}byteorder" in names:
      byteorder = archive.read(f"{prefix}byteorder").decode().strip()
    unpickler = _Unpickler(io.BytesIO(archive.read(pickles[0])), path,
                           byteorder)
    tree = unpickler.load()
    for storage in unpickler.storages.values():
      entry = f"{prefix}data/{storage.key}"
      if entry not in names:
        raise TorchFileError(f"{path} lacks {entry}, the bytes of storage"
                             f" {storage.key!r}.")
      storage.data = _storage_array(archive.read(entry), storage, path)
  return tree


def _storage_array(raw: bytes, storage: _Storage, path: str) -> np.ndarray:
  """A storage's elements from its bytes, checked against its length."""
  expected = storage.numel * storage.dtype.itemsize
  if len(raw) < expected:
    raise TorchFileError(
        f"{path}: storage {storage.key!r} has {len(raw)} bytes of the"
        f" {expected} its {storage.numel} elements need: the file is cut"
        " short."
    )
  return _native(np.frombuffer(raw[:expected], storage.dtype))


def _read_legacy(file: BinaryIO, path: str) -> Any:
  """The object of a legacy-layout file, its storages read."""

  def header_pickle(what: str) -> Any:
    try:
      return _Unpickler(file, path, "little").load()
    except TorchFileError:
      raise
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
      raise TorchFileError(
          f"{path} is not a PyTorch file (its {what} does not read:"
          f" {error})."
      ) from None

  if header_pickle("magic number") != _LEGACY_MAGIC_NUMBER:
    raise TorchFileError(
        f"{path} is not a PyTorch file: it is neither a zip archive nor"
        " starts with torch.save's magic number."
    )
  version = header_pickle("protocol version")
  if version != _LEGACY_PROTOCOL_VERSION:
    raise TorchFileError(f"{path}: unknown legacy protocol {version!r}.")
  system = header_pickle("system information")
  byteorder = "little" if system.get("little_endian", True) else "big"
  unpickler = _Unpickler(file, path, byteorder)
  try:
    tree = unpickler.load()
    keys = _Unpickler(file, path, byteorder).load()
  except (pickle.UnpicklingError, EOFError) as error:
    raise TorchFileError(f"{path} is cut short or damaged: {error}") from None
  storages = unpickler.storages
  for key in keys:
    key = str(key)
    count_bytes = file.read(8)
    if len(count_bytes) < 8:
      raise TorchFileError(f"{path} is cut short before storage {key!r}.")
    (numel,) = struct.unpack("<q", count_bytes)
    storage = storages.get(key)
    if storage is None:
      raise TorchFileError(f"{path} holds storage {key!r}, which no tensor"
                           " uses: the file is inconsistent.")
    if numel != storage.numel:
      raise TorchFileError(
          f"{path}: storage {key!r} holds {numel} elements where its"
          f" tensors expect {storage.numel}."
      )
    storage.data = _storage_array(
        file.read(numel * storage.dtype.itemsize), storage, path)
  missing = [key for key, storage in storages.items() if storage.data is None]
  if missing:
    raise TorchFileError(f"{path} is cut short: storages {missing} are"
                         " missing.")
  return tree


def load(path: epath.PathLike) -> Any:
  """The object a PyTorch file holds, its tensors as NumPy arrays.

  Raises:
    UnsafeFileError: the file names a global outside the few a state dict
      needs.
    TorchFileError: the file is not a PyTorch file, or is cut short or
      inconsistent (the message names the file and the tensor).
  """
  path = epath.Path(path)
  data = path.read_bytes()
  file = io.BytesIO(data)
  if zipfile.is_zipfile(file):
    file.seek(0)
    try:
      tree = _read_zip(file, str(path))
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as error:
      raise TorchFileError(f"{path} is cut short or damaged: {error}") from None
  else:
    file.seek(0)
    tree = _read_legacy(file, str(path))
  return _materialise(tree, str(path))


def load_state_dict(path: epath.PathLike) -> dict[str, np.ndarray]:
  """The state dict in a PyTorch file: parameter name -> array.

  Raises:
    TorchFileError: as `load`, or the file holds something other than a
      flat mapping of names to tensors.
  """
  tree = load(path)
  if not isinstance(tree, Mapping):
    raise TorchFileError(f"{path} holds a {type(tree).__name__}, not a state"
                         " dict.")
  not_arrays = [str(key) for key, value in tree.items()
                if not isinstance(value, np.ndarray)]
  if not_arrays:
    raise TorchFileError(
        f"{path} is not a flat state dict: {not_arrays[:5]} are not tensors."
    )
  return {str(key): value for key, value in tree.items()}
