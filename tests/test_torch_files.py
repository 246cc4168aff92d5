"""Tests of the restricted reader of PyTorch files, on files torch wrote.

tests/fixtures/torch/ holds files made by scripts/make_torch_fixtures.py
with torch (not installed here) and the tensors torch read back from them,
and LPIPS's AlexNet heads as the lpips wheel ships them.
"""

import os
import pathlib
import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest

from spg_jax.pretrained import torch_files

_FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "torch"


def _expected(npz_name):
  with np.load(_FIXTURES / npz_name) as saved:
    return {name: saved[name] for name in saved.files}


def _comparable(array):
  """bfloat16 as its bits, as the fixture stores it."""
  if array.dtype == ml_dtypes.bfloat16:
    return array.view(np.uint16)
  return array


@pytest.mark.parametrize("name", ["tensors_zip.pth", "tensors_legacy.pth"])
def test_both_layouts_read_as_torch_reads_them(name):
  """Every storage type, a parameter, a 0-d tensor, a transposed view, two
  tensors sharing a storage at different offsets, and an empty tensor:
  names, dtypes, shapes and values exactly as torch.load gave them."""
  loaded = torch_files.load_state_dict(_FIXTURES / name)
  expected = _expected("tensors.npz")
  assert list(loaded) == list(expected)
  for key, array in loaded.items():
    assert array.flags.c_contiguous, key
    assert array.dtype.isnative, key
    np.testing.assert_array_equal(_comparable(array), expected[key],
                                  err_msg=key)
    assert _comparable(array).dtype == expected[key].dtype, key
  assert loaded["bfloat16"].dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(loaded["shared.middle"],
                                loaded["shared.whole"][3:7])
  np.testing.assert_array_equal(
      loaded["transposed"], np.arange(12.0, dtype=np.float32).reshape(3, 4).T)


def test_the_published_lpips_heads_read_as_torch_reads_them():
  loaded = torch_files.load_state_dict(_FIXTURES / "lpips_v0.1_alex.pth")
  expected = _expected("lpips_v0.1_alex.npz")
  assert {key: value.shape for key, value in loaded.items()} == {
      f"lin{index}.model.1.weight": (1, channels, 1, 1)
      for index, channels in enumerate((64, 192, 384, 256, 256))
  }
  for key, array in loaded.items():
    np.testing.assert_array_equal(array, expected[key], err_msg=key)


class _Payload:
  """What a malicious file pickles: a call that leaves a file behind."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


def _zip_with_pickle(path, pickled):
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", pickled)
    archive.writestr("archive/version", "3\n")


def test_a_file_that_would_run_code_is_refused_unrun(tmp_path):
  marker = tmp_path / "ran"
  path = tmp_path / "evil.pth"
  _zip_with_pickle(path, pickle.dumps({"weight": _Payload(marker)},
                                      protocol=2))
  with pytest.raises(torch_files.UnsafeFileError,
                     match=f"{path} names the global posix.system"):
    torch_files.load(path)
  assert not marker.exists()
  # The same in the legacy layout, after a valid header.
  legacy = tmp_path / "evil_legacy.pth"
  header = (_FIXTURES / "lpips_v0.1_alex.pth").read_bytes()[:119]
  legacy.write_bytes(header + pickle.dumps([_Payload(marker)], protocol=2))
  with pytest.raises(torch_files.UnsafeFileError, match="posix.system"):
    torch_files.load(legacy)
  assert not marker.exists()


def test_a_storage_cut_short_names_the_file_and_the_storage(tmp_path):
  source = zipfile.ZipFile(_FIXTURES / "tensors_zip.pth")
  path = tmp_path / "cut.pth"
  storages = [name for name in source.namelist() if "/data/" in name]
  victim = max(storages, key=lambda name: source.getinfo(name).file_size)
  with zipfile.ZipFile(path, "w") as archive:
    for name in source.namelist():
      data = source.read(name)
      archive.writestr(name, data[: len(data) // 2] if name == victim
                       else data)
  key = victim.rsplit("/", 1)[1]
  with pytest.raises(torch_files.TorchFileError,
                     match=f"{path}: storage '{key}' has .* bytes of the"):
    torch_files.load(path)


@pytest.mark.parametrize("name", ["tensors_zip.pth", "tensors_legacy.pth",
                                  "lpips_v0.1_alex.pth"])
def test_every_truncation_gives_a_clear_error(tmp_path, name):
  """Cut anywhere, a file is refused with TorchFileError naming it: never
  another exception, never a partial state dict."""
  data = (_FIXTURES / name).read_bytes()
  path = tmp_path / name
  for length in sorted(set(np.linspace(0, len(data) - 1, 60).astype(int))):
    path.write_bytes(data[:length])
    with pytest.raises(torch_files.TorchFileError, match=str(path)):
      torch_files.load(path)


def test_random_bytes_are_not_a_pytorch_file(tmp_path):
  rng = np.random.default_rng(0)
  path = tmp_path / "noise.pth"
  for size in (0, 1, 7, 100, 5000):
    path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    with pytest.raises(torch_files.TorchFileError, match=str(path)):
      torch_files.load(path)


def test_a_file_of_other_things_than_tensors_is_not_a_state_dict(tmp_path):
  path = tmp_path / "numbers.pth"
  _zip_with_pickle(path, pickle.dumps({"epoch": 3}, protocol=2))
  assert torch_files.load(path) == {"epoch": 3}
  with pytest.raises(torch_files.TorchFileError,
                     match=r"not a flat state dict: \['epoch'\]"):
    torch_files.load_state_dict(path)
