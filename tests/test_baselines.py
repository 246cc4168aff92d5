"""Tests of the classical inpainting baselines: exact known pixels, known fills
of simple images, and methods that cannot run reported, not faked."""

import pathlib
import sys

import numpy as np
import pytest

from spg_jax.evaluation import baselines

_HEIGHT, _WIDTH = 24, 40
_HOLE_COLOUR = (255, 255, 255)


def _rectangle() -> np.ndarray:
  hole = np.zeros([_HEIGHT, _WIDTH], bool)
  hole[6:17, 9:27] = True
  return hole


def _at_the_border() -> np.ndarray:
  """An L along the right and bottom edges, and a lone pixel."""
  hole = np.zeros([_HEIGHT, _WIDTH], bool)
  hole[:, 33:] = True
  hole[20:, 12:] = True
  hole[3, 4] = True
  return hole


def _scattered() -> np.ndarray:
  return np.random.default_rng(0).random([_HEIGHT, _WIDTH]) < 0.3


_HOLES = {"rectangle": _rectangle, "border": _at_the_border,
          "scattered": _scattered}


def _available(name: str) -> None:
  reason = baselines.unavailable_reason(name)
  if reason is not None:
    pytest.skip(reason)


def _textured_image(seed: int) -> np.ndarray:
  """Noise in [0, 127] per channel, never the hole's white."""
  rng = np.random.default_rng(seed)
  return rng.integers(0, 128, [_HEIGHT, _WIDTH, 3], dtype=np.uint8)


@pytest.mark.parametrize("hole_name", list(_HOLES))
@pytest.mark.parametrize("name", baselines.METHODS)
def test_known_pixels_stay_exact_and_the_hole_changes(name, hole_name):
  _available(name)
  hole = _HOLES[hole_name]()
  image = _textured_image(list(_HOLES).index(hole_name))
  image[hole] = _HOLE_COLOUR  # True content no fill from the rest can make.
  filled = baselines.get(name)(image.copy(), hole)
  assert filled.dtype == np.uint8 and filled.shape == image.shape
  np.testing.assert_array_equal(filled[~hole], image[~hole])
  assert np.any(filled != image, axis=-1)[hole].all()


# OpenCV's Telea adds a normalised gradient term that rounding noise alone
# switches on, so on a constant image it is off by up to this many levels.
_TELEA_TOLERANCE = 3


@pytest.mark.parametrize("name", baselines.METHODS)
def test_a_constant_image_is_filled_with_its_colour(name):
  _available(name)
  colour = np.array([10, 200, 30], np.uint8)
  image = np.broadcast_to(colour, [_HEIGHT, _WIDTH, 3]).copy()
  hole = _rectangle()
  image[hole] = _HOLE_COLOUR
  filled = baselines.get(name)(image, hole)
  error = np.abs(filled[hole].astype(int) - colour)
  assert error.max() <= (_TELEA_TOLERANCE if name == "telea" else 0)


def test_meanfill_paints_the_known_mean():
  image = np.zeros([_HEIGHT, _WIDTH, 3], np.uint8)
  image[:, : _WIDTH // 2] = (0, 100, 200)
  image[:, _WIDTH // 2 :] = (100, 50, 0)
  # A hole centred on the seam leaves as many known pixels of each colour.
  hole = np.zeros([_HEIGHT, _WIDTH], bool)
  hole[4:20, 12:28] = True
  image[hole] = _HOLE_COLOUR
  filled = baselines.meanfill(image, hole)
  np.testing.assert_array_equal(
      filled[hole], np.full([hole.sum(), 3], (50, 75, 100))
  )


def test_an_unknown_method_is_refused_with_the_names():
  for call in (baselines.unavailable_reason, baselines.get):
    with pytest.raises(
        ValueError, match="'telia'; the methods are meanfill, telea"
    ):
      call("telia")


def test_a_missing_package_is_reported_not_faked(monkeypatch):
  monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
  for name in ("telea", "navier_stokes"):
    reason = baselines.unavailable_reason(name)
    assert f"pip install {baselines.OPENCV_REQUIREMENT}" in reason
    with pytest.raises(RuntimeError, match="needs the cv2 module"):
      baselines.get(name)
  assert baselines.unavailable_reason("meanfill") is None


def test_a_patchmatch_without_its_native_library_is_reported(monkeypatch):
  _available("patchmatch")
  import patchmatch  # pylint: disable=g-import-not-at-top

  monkeypatch.setattr(patchmatch, "patchmatch_available", False)
  reason = baselines.unavailable_reason("patchmatch")
  assert "native library did not load" in reason
  assert baselines.PATCHMATCH_REQUIREMENT in reason


def test_the_requirements_named_are_setups_pins():
  setup = (pathlib.Path(__file__).parents[1] / "setup.py").read_text()
  for requirement in (
      baselines.OPENCV_REQUIREMENT, baselines.PATCHMATCH_REQUIREMENT
  ):
    assert f'"{requirement}"' in setup


@pytest.mark.parametrize(
    "image, mask, message",
    [
        (np.zeros([4, 6, 3], np.float32), np.zeros([4, 6], bool),
         "uint8 RGB array"),
        (np.zeros([4, 6, 3], np.uint8), np.zeros([4, 6], np.uint8),
         "bool array of the image's size"),
        (np.zeros([4, 6, 3], np.uint8), np.zeros([6, 4], bool),
         "bool array of the image's size"),
        (np.zeros([4, 6, 3], np.uint8), np.ones([4, 6], bool),
         "covers the whole image"),
    ],
)
def test_bad_inputs_are_refused(image, mask, message):
  for name in baselines.METHODS:
    if baselines.unavailable_reason(name) is None:
      with pytest.raises(ValueError, match=message):
        baselines.get(name)(image, mask)
