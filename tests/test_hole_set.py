"""Tests of the fixed hole set: deterministic files, verified loading, and
settings that are never silently replaced."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from spg_jax.data import mask_config as mask_config_lib
from spg_jax.data import masks
from spg_jax.evaluation import hole_set
from spg_jax.runtime import atomic_files

# Non-square, so a swapped height and width shows.
_HEIGHT, _WIDTH = 24, 40
_NUM_MASKS = 6
_SEED = 3


def _mixed_config():
  """Rectangles and brush strokes, so both generators are exercised."""
  config = mask_config_lib.default_mask_config()
  config.kinds = ("rectangle", "brush")
  config.probabilities = (0.5, 0.5)
  return config


def _write(directory, seed=_SEED, config=None):
  hole_set.write_hole_set(
      directory, config or _mixed_config(), _HEIGHT, _WIDTH, _NUM_MASKS, seed
  )


@pytest.fixture(name="written", scope="module")
def _written(tmp_path_factory):
  """A hole set written once; tests that damage it work on a copy."""
  directory = tmp_path_factory.mktemp("holes") / "set"
  _write(directory)
  return directory


@pytest.fixture(name="copy")
def _copy(written, tmp_path):
  directory = tmp_path / "set"
  shutil.copytree(written, directory)
  return directory


def test_same_seed_writes_byte_identical_files(written, tmp_path):
  again = tmp_path / "again"
  _write(again)
  names = sorted(path.name for path in written.iterdir())
  assert names == sorted(path.name for path in again.iterdir())
  assert names == [hole_set.MANIFEST] + [
      hole_set.mask_file_name(i) for i in range(_NUM_MASKS)
  ]
  for name in names:
    assert (written / name).read_bytes() == (again / name).read_bytes(), name
  np.testing.assert_array_equal(
      hole_set.load_hole_set(written).masks, hole_set.load_hole_set(again).masks
  )


def test_another_seed_draws_other_holes(written, tmp_path):
  other = tmp_path / "other"
  _write(other, seed=_SEED + 1)
  first = hole_set.load_hole_set(written).masks
  second = hole_set.load_hole_set(other).masks
  differing = [not np.array_equal(a, b) for a, b in zip(first, second)]
  assert sum(differing) >= _NUM_MASKS - 1, differing


def test_loaded_masks_are_the_generated_ones(written):
  loaded = hole_set.load_hole_set(written)
  mask_fn = masks.make_mask_fn(_mixed_config(), _HEIGHT, _WIDTH)
  expected = np.stack(
      [np.asarray(mask_fn(np.array([_SEED, i], np.int64)))
       for i in range(_NUM_MASKS)]
  )
  assert loaded.masks.dtype == np.float32
  assert loaded.masks.shape == (_NUM_MASKS, _HEIGHT, _WIDTH, 1)
  np.testing.assert_array_equal(loaded.masks, expected)
  # Both kinds were drawn: some hole is not a rectangle (its bounding box
  # holds known pixels), some is.
  is_box = []
  for hole in loaded.masks[..., 0] > 0:
    rows, cols = np.nonzero(hole)
    box = hole[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    is_box.append(bool(box.all()))
  assert any(is_box) and not all(is_box), is_box
  assert loaded.seed == _SEED
  entries = loaded.manifest["masks"]
  np.testing.assert_allclose(
      [entry["hole_fraction"] for entry in entries],
      expected.mean(axis=(1, 2, 3)),
  )
  for entry in entries:
    data = (written / entry["file"]).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
  assert loaded.manifest["mask_config"]["kinds"] == ["rectangle", "brush"]
  assert (loaded.manifest["height"], loaded.manifest["width"]) == (
      _HEIGHT, _WIDTH)


def _delete_manifest(directory):
  (directory / hole_set.MANIFEST).unlink()


def _delete_mask(directory):
  (directory / hole_set.mask_file_name(2)).unlink()


def _change_mask(directory):
  hole = np.zeros([_HEIGHT, _WIDTH], np.uint8)
  hole[:4, :4] = hole_set.HOLE_VALUE
  atomic_files.write_png(directory / hole_set.mask_file_name(2), hole)


def _resize_mask_and_its_hash(directory):
  data = atomic_files.png_bytes(np.zeros([_WIDTH, _HEIGHT], np.uint8))
  (directory / hole_set.mask_file_name(2)).write_bytes(data)
  manifest = json.loads((directory / hole_set.MANIFEST).read_text())
  manifest["masks"][2]["sha256"] = hashlib.sha256(data).hexdigest()
  (directory / hole_set.MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "damage, error, message",
    [
        (_delete_manifest, FileNotFoundError,
         r"manifest.json is missing, so .* is not a complete hole set"),
        (_delete_mask, FileNotFoundError,
         r"mask_00002.png listed in manifest.json is missing"),
        (_change_mask, ValueError,
         r"mask_00002.png changed since it was written"),
        (_resize_mask_and_its_hash, ValueError,
         r"mask_00002.png has shape \(40, 24\) but the hole set is 24x40"),
    ],
)
def test_a_damaged_hole_set_is_refused_naming_the_file(
    copy, damage, error, message
):
  damage(copy)
  with pytest.raises(error, match=message) as raised:
    hole_set.load_hole_set(copy)
  assert f"delete {copy} and run the evaluation again" in str(raised.value)
  with pytest.raises(error, match=message):
    hole_set.get_or_create(
        copy, _mixed_config(), _HEIGHT, _WIDTH, _NUM_MASKS, _SEED
    )


def test_get_or_create_writes_once_then_loads(written, tmp_path):
  directory = tmp_path / "holes"
  created = hole_set.get_or_create(
      directory, _mixed_config(), _HEIGHT, _WIDTH, _NUM_MASKS, _SEED
  )
  np.testing.assert_array_equal(
      created.masks, hole_set.load_hole_set(written).masks
  )
  # The second call reads the files: it sees a mask changed on disk (with
  # its hash, so that the set stays valid) rather than drawing anew.
  hole = np.zeros([_HEIGHT, _WIDTH], np.uint8)
  hole[5:9, 7:20] = hole_set.HOLE_VALUE
  data = atomic_files.png_bytes(hole)
  (directory / hole_set.mask_file_name(0)).write_bytes(data)
  manifest = json.loads((directory / hole_set.MANIFEST).read_text())
  manifest["masks"][0]["sha256"] = hashlib.sha256(data).hexdigest()
  (directory / hole_set.MANIFEST).write_text(json.dumps(manifest))
  loaded = hole_set.get_or_create(
      directory, _mixed_config(), _HEIGHT, _WIDTH, _NUM_MASKS, _SEED
  )
  np.testing.assert_array_equal(loaded.masks[0, ..., 0], hole > 0)
  np.testing.assert_array_equal(loaded.masks[1:], created.masks[1:])


def test_other_settings_are_refused_naming_the_fields(copy):
  before = {path.name: path.read_bytes() for path in copy.iterdir()}
  config = _mixed_config()
  config.rectangle_max_fraction = 0.25
  with pytest.raises(ValueError) as raised:
    hole_set.get_or_create(copy, config, _HEIGHT, _WIDTH + 8, _NUM_MASKS, 9)
  message = str(raised.value)
  assert "was drawn with other settings: " in message
  message = message.split("other settings: ")[1]
  assert (
      "mask_config.rectangle_max_fraction (stored 0.5, asked 0.25)" in message
  )
  assert "seed (stored 3, asked 9)" in message
  assert "width (stored 40, asked 48)" in message
  assert "height" not in message and "num_masks" not in message
  assert before == {path.name: path.read_bytes() for path in copy.iterdir()}


def test_an_existing_directory_is_never_overwritten(copy):
  with pytest.raises(FileExistsError, match="never overwritten"):
    _write(copy, seed=_SEED + 1)


def test_an_interrupted_write_leaves_nothing_that_loads(tmp_path, monkeypatch):
  encoded = []
  png_bytes = atomic_files.png_bytes

  def fail_on_the_third_mask(image):
    if len(encoded) == 2:
      raise KeyboardInterrupt
    encoded.append(image)
    return png_bytes(image)

  monkeypatch.setattr(
      hole_set.atomic_files, "png_bytes", fail_on_the_third_mask
  )
  directory = tmp_path / "holes"
  with pytest.raises(KeyboardInterrupt):
    _write(directory)
  assert list(tmp_path.iterdir()) == []
  with pytest.raises(FileNotFoundError, match="not a complete hole set"):
    hole_set.load_hole_set(directory)
