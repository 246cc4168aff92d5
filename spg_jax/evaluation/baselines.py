"""Classical inpainting methods, to put SPG-Net's numbers in context.

Every method has one signature, `fill(image, mask) -> image`: image uint8
RGB [H, W, 3], mask bool [H, W] with True = hole. The known pixels of the
result are the input's exactly: each result is composited with the input at
the end, whatever the library underneath does near the hole.

- `meanfill`: the known region's mean colour (`evaluate.mean_fill`).
- `telea`: Telea's fast marching method (2004), OpenCV's INPAINT_TELEA.
- `navier_stokes`: Bertalmio et al.'s fluid dynamics method (2001),
  OpenCV's INPAINT_NS.
- `patchmatch`: copies patches of the known region into the hole (Barnes et
  al., 2009), with PyPI's `pypatchmatch`.

A method whose package is missing is named by `unavailable_reason`, and the
caller leaves it out: no method ever stands in for another.

Why `pypatchmatch` and not `patchmatch-cython`: both install as wheels on
Python 3.11. On 8 street scenes of the synthetic test split per size (4 at
256), with the default config's rectangle holes, the mean hole L1 in [0, 1]
units and the time per image on a loaded 2-core CPU were:

  size  pypatchmatch 7x7   its default 31x31  patchmatch-cython 5x5 (default)
  64    0.127,   86 ms     0.145,  227 ms     0.152,   49 ms
  128   0.120,  284 ms     0.123,  512 ms     0.161,  130 ms
  256   0.087,  884 ms     0.092, 4170 ms     0.142,  532 ms

patchmatch-cython with 7x7 patches scored 0.133, 0.161 and 0.138 (up to
twice as slow as its default), and without its seam blending worse still.
pypatchmatch with 7x7 patches has the lowest error at every size (39% below
patchmatch-cython's at 256 pixels) for about twice patchmatch-cython's
time, and gives equal fills for a set seed. (Telea scored 0.112, 0.099 and
0.083 in 1 to 15 ms: smooth fills suit L1.)
"""

import dataclasses
import importlib
from typing import Callable

import numpy as np

from spg_jax.evaluation import evaluate

# (image uint8 [H, W, 3], hole bool [H, W]) -> uint8 [H, W, 3].
Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]

# The pinned requirements of the `baselines` extra in setup.py.
OPENCV_REQUIREMENT = "opencv-python-headless==5.0.0.93"
PATCHMATCH_REQUIREMENT = "pypatchmatch==2.2.0"
# OpenCV estimates each hole pixel from the known and already filled pixels
# within this radius; 3 is the value of OpenCV's own examples, and larger
# radii blur more.
INPAINT_RADIUS = 3
# pypatchmatch compares patches of (2 * radius + 1)**2 pixels; 3 (7x7) beat
# its default 15 in error and time (see the module docstring).
PATCHMATCH_RADIUS = 3
# pypatchmatch's randomised search starts from this seed on every call, so
# equal inputs get equal fills.
PATCHMATCH_SEED = 0


def _check_inputs(image: np.ndarray, mask: np.ndarray) -> None:
  """Raises ValueError unless image is uint8 [H, W, 3] and mask bool [H, W]."""
  if not (
      isinstance(image, np.ndarray)
      and image.dtype == np.uint8
      and image.ndim == 3
      and image.shape[-1] == 3
  ):
    raise ValueError(
        "The image must be a uint8 RGB array [H, W, 3]; got"
        f" {getattr(image, 'dtype', type(image))}"
        f" {getattr(image, 'shape', '')}."
    )
  if not (
      isinstance(mask, np.ndarray)
      and mask.dtype == bool
      and mask.shape == image.shape[:2]
  ):
    raise ValueError(
        f"The mask must be a bool array of the image's size {image.shape[:2]}"
        f" (True = hole); got {getattr(mask, 'dtype', type(mask))}"
        f" {getattr(mask, 'shape', '')}. Convert with mask > 0."
    )
  if mask.all():
    raise ValueError(
        "The mask covers the whole image, so no known pixel is left to fill"
        " the hole from; leave some of the image known."
    )


def _composite(
    image: np.ndarray, mask: np.ndarray, filled: np.ndarray
) -> np.ndarray:
  """The fill inside the hole, rounded to uint8; the input's pixels outside."""
  filled = np.clip(np.rint(filled), 0, 255).astype(np.uint8)
  return np.where(mask[..., None], filled, image)


def meanfill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Fills the hole with the known region's mean colour, rounded."""
  _check_inputs(image, mask)
  filled = evaluate.mean_fill(
      image[None].astype(np.float32), mask[None, ..., None].astype(np.float32)
  )[0]
  return _composite(image, mask, np.asarray(filled))


def _opencv_inpaint(
    image: np.ndarray, mask: np.ndarray, flag: str
) -> np.ndarray:
  """cv2.inpaint with the method `flag` ('INPAINT_TELEA' or 'INPAINT_NS')."""
  import cv2  # pylint: disable=g-import-not-at-top

  _check_inputs(image, mask)
  filled = cv2.inpaint(
      np.ascontiguousarray(image), mask.astype(np.uint8), INPAINT_RADIUS,
      getattr(cv2, flag),
  )
  return _composite(image, mask, filled)


def telea(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Telea's fast marching method: the hole filled inwards from its border.

  OpenCV's implementation is off by up to ~3 levels even on a constant
  image: it adds a normalised gradient term that rounding noise alone
  turns on.
  """
  return _opencv_inpaint(image, mask, "INPAINT_TELEA")


def navier_stokes(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Bertalmio et al.'s method: isophotes carried into the hole as a fluid."""
  return _opencv_inpaint(image, mask, "INPAINT_NS")


def patchmatch(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """PatchMatch: the hole rebuilt from similar patches of the known region."""
  import patchmatch as pypatchmatch  # pylint: disable=g-import-not-at-top

  _check_inputs(image, mask)
  pypatchmatch.set_random_seed(PATCHMATCH_SEED)
  filled = pypatchmatch.inpaint(
      np.ascontiguousarray(image), mask, patch_size=PATCHMATCH_RADIUS
  )
  return _composite(image, mask, filled)


@dataclasses.dataclass(frozen=True)
class _Method:
  """A method, the module it imports (None: none beyond spg_jax's own), the
  requirement that installs it, and the module attribute, if any, that says
  whether its native library loaded."""

  fill: Fill
  module: str | None = None
  requirement: str = ""
  loaded_flag: str | None = None


_METHODS = {
    "meanfill": _Method(meanfill),
    "telea": _Method(telea, "cv2", OPENCV_REQUIREMENT),
    "navier_stokes": _Method(navier_stokes, "cv2", OPENCV_REQUIREMENT),
    "patchmatch": _Method(
        patchmatch, "patchmatch", PATCHMATCH_REQUIREMENT,
        "patchmatch_available",
    ),
}
# The method names, in the order a report lists them.
METHODS = tuple(_METHODS)


def _method(name: str) -> _Method:
  if name not in _METHODS:
    raise ValueError(
        f"Unknown inpainting method {name!r}; the methods are"
        f" {', '.join(METHODS)}."
    )
  return _METHODS[name]


def unavailable_reason(name: str) -> str | None:
  """Why method `name` cannot run here, or None if it can.

  Raises:
    ValueError: `name` is not one of `METHODS`.
  """
  method = _method(name)
  if method.module is None:
    return None
  try:
    module = importlib.import_module(method.module)
  except ImportError as error:
    return (
        f"{name} needs the {method.module} module, which does not import"
        f" ({error}); pip install {method.requirement} (or the project's"
        " extra: pip install -e '.[evaluate]')."
    )
  if method.loaded_flag and not getattr(module, method.loaded_flag):
    return (
        f"{name}: {method.module} imports but its native library did not"
        f" load (see its warning above); reinstall {method.requirement}."
    )
  return None


def get(name: str) -> Fill:
  """Returns method `name`'s fill function.

  Raises:
    ValueError: `name` is not one of `METHODS`.
    RuntimeError: the method cannot run here; the message says why and how
      to install what it needs.
  """
  reason = unavailable_reason(name)
  if reason is not None:
    raise RuntimeError(reason)
  return _METHODS[name].fill
