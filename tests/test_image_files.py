"""Tests of reading and writing inference files, and their clear errors."""

import numpy as np
from PIL import Image
import pytest

from spg_jax.data import classes
from spg_jax.inference import image_files

_TABLE = classes.get_class_table("cityscapes_categories")


def _save(path, array, mode=None):
  Image.fromarray(array, mode).save(path)
  return path


def test_greyscale_and_palette_images_become_rgb(tmp_path):
  grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
  image = image_files.read_image(_save(tmp_path / "g.png", grey))
  assert image.shape == (3, 4, 3)
  np.testing.assert_array_equal(image[..., 1], grey)
  indices = np.arange(12, dtype=np.uint8).reshape(3, 4) % 8
  palette_image = Image.fromarray(indices, "P")
  palette_image.putpalette(_TABLE.palette().ravel().tolist())
  palette_image.save(tmp_path / "p.png")
  np.testing.assert_array_equal(
      image_files.read_image(tmp_path / "p.png"), _TABLE.colorize(indices)
  )


def test_a_reordered_palette_is_read_by_colour(tmp_path):
  labels = np.array([[1, 7], [0, 4]], np.int32)
  # An editor re-saved the map with its palette reversed.
  order = np.arange(8)[::-1]
  image = Image.fromarray(order[labels].astype(np.uint8), "P")
  image.putpalette(_TABLE.palette()[order].ravel().tolist())
  image.save(tmp_path / "reordered.png")
  np.testing.assert_array_equal(
      image_files.read_labels(tmp_path / "reordered.png", (2, 2), _TABLE),
      labels,
  )


def test_opaque_alpha_is_dropped_and_transparency_refused(tmp_path):
  rgba = np.full([3, 4, 4], 200, np.uint8)
  rgba[..., 3] = 255
  image = image_files.read_image(_save(tmp_path / "opaque.png", rgba))
  np.testing.assert_array_equal(image, rgba[..., :3])
  rgba[0, 0, 3] = 0
  with pytest.raises(image_files.InputError, match="partly transparent"):
    image_files.read_image(_save(tmp_path / "clear.png", rgba))


def test_sixteen_bit_images_are_refused(tmp_path):
  path = tmp_path / "deep.png"
  Image.fromarray(np.full([3, 4], 40000, np.uint16)).save(path)
  with pytest.raises(image_files.InputError, match="16-bit"):
    image_files.read_image(path)


def test_missing_and_unreadable_files_are_named(tmp_path):
  with pytest.raises(image_files.InputError, match="does not exist"):
    image_files.read_image(tmp_path / "none.png")
  (tmp_path / "bad.png").write_bytes(b"not a png")
  with pytest.raises(image_files.InputError, match="bad.png is not a readable"):
    image_files.read_image(tmp_path / "bad.png")


def test_mask_is_non_zero_and_must_match_the_image(tmp_path):
  mask = np.zeros([3, 4], np.uint8)
  mask[1, 2] = 255
  hole = image_files.read_mask(_save(tmp_path / "m.png", mask), (3, 4, 3))
  assert hole.sum() == 1 and hole[1, 2]
  with pytest.raises(image_files.InputError, match="4x3 pixels but the image is 5x3"):
    image_files.read_mask(tmp_path / "m.png", (3, 5, 3))


def test_labels_round_trip_through_the_palette_png(tmp_path):
  labels = np.arange(8, dtype=np.int32).reshape(2, 4)
  preview = image_files.write_labels(tmp_path / "l.png", labels, _TABLE)
  np.testing.assert_array_equal(
      image_files.read_labels(tmp_path / "l.png", (2, 4), _TABLE), labels
  )
  # The preview, a colour PNG, reads back to the same ids.
  np.testing.assert_array_equal(
      image_files.read_labels(preview, (2, 4), _TABLE), labels
  )


def test_labels_outside_the_table_or_palette_are_refused(tmp_path):
  with pytest.raises(image_files.InputError, match=r"holds ids \[9\]"):
    image_files.read_labels(
        _save(tmp_path / "ids.png", np.full([2, 2], 9, np.uint8)), (2, 2), _TABLE
    )
  colours = np.zeros([2, 2, 3], np.uint8)
  colours[0, 0] = (1, 2, 3)
  with pytest.raises(image_files.InputError, match=r"\(1, 2, 3\)"):
    image_files.read_labels(_save(tmp_path / "c.png", colours), (2, 2), _TABLE)


def test_outputs_must_be_png(tmp_path):
  with pytest.raises(image_files.InputError, match="with a .png suffix"):
    image_files.write_image(tmp_path / "out.jpg", np.zeros([2, 2, 3], np.uint8))
  assert not (tmp_path / "out.jpg").exists()
