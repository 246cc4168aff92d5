"""Reading and writing the files of inference: images, hole masks, label maps.

Everything is checked on the way in, so that a wrong file gets an error that
names it, says what is wrong and how to fix it, before any network runs:

- images: PNG or JPEG, 8-bit; greyscale and palette images become RGB, an
  alpha channel is dropped if fully opaque and refused otherwise, 16-bit
  images are refused (the networks and the exact-pixel guarantee work on
  8-bit values);
- masks: any image of the same size; non-zero (white) = hole;
- label maps: an index PNG (greyscale or palette, value = class id) or a
  colour PNG in the class table's palette.

Outputs are PNG only, written atomically, so that the known pixels of an
output are exactly the input's values and no half-written file is left.
"""

import io

from etils import epath
import numpy as np
from PIL import Image

from spg_jax.data import labelling
from spg_jax.runtime import atomic_files

OUTPUT_SUFFIX = ".png"
_SIXTEEN_BIT_MODES = ("I", "F")


class InputError(ValueError):
  """An input file cannot be used; the message names it and says why."""


def _open(path: epath.PathLike, what: str) -> Image.Image:
  path = epath.Path(path)
  if not path.exists():
    raise InputError(f"The {what} {path} does not exist.")
  try:
    image = Image.open(io.BytesIO(path.read_bytes()))
    image.load()
  except Image.DecompressionBombError as error:
    raise InputError(
        f"The {what} {path} is too large to read safely ({error}); scale it"
        " down first."
    ) from None
  except (OSError, ValueError) as error:
    raise InputError(
        f"The {what} {path} is not a readable image ({error}); give a PNG or"
        " JPEG file."
    ) from None
  return image


def read_image(path: epath.PathLike) -> np.ndarray:
  """Returns the image at `path` as uint8 RGB [H, W, 3].

  Raises:
    InputError: the file is missing, unreadable, 16-bit or transparent.
  """
  image = _open(path, "image")
  if image.mode in _SIXTEEN_BIT_MODES or image.mode.startswith("I;16"):
    raise InputError(
        f"The image {path} has {image.mode!r} pixels (16-bit or float); spg_jax"
        " inpaints 8-bit images. Convert it to 8-bit RGB first."
    )
  if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
    alpha = np.asarray(image.convert("RGBA"))[..., 3]
    if np.any(alpha < 255):
      raise InputError(
          f"The image {path} is partly transparent; its transparent pixels"
          " have no colour to keep. Flatten it onto a background, or mark"
          " those pixels as the hole in the mask."
      )
  return np.asarray(image.convert("RGB"))


def read_mask(path: epath.PathLike, image_shape: tuple[int, ...]) -> np.ndarray:
  """Returns the hole as bool [H, W]: True where the mask file is non-zero.

  Raises:
    InputError: the file is unreadable or its size differs from the image's.
  """
  mask = _open(path, "mask")
  if mask.mode in ("RGBA", "LA"):
    values = np.asarray(mask)[..., :-1]  # The colour, not the alpha.
  else:
    values = np.asarray(mask.convert("RGB") if mask.mode == "P" else mask)
  hole = values.reshape(values.shape[:2] + (-1,)).any(axis=-1)
  if hole.shape != tuple(image_shape[:2]):
    raise InputError(
        f"The mask {path} is {hole.shape[1]}x{hole.shape[0]} pixels but the"
        f" image is {image_shape[1]}x{image_shape[0]}; draw the mask on the"
        " image itself so that they match."
    )
  return hole


def _holds_class_ids(
    image: Image.Image, class_table: labelling.ClassTable
) -> bool:
  """Whether the pixel values are class ids rather than colours.

  Single-band images hold ids. A palette image holds ids only if its palette
  gives each used index its class's colour (as `write_labels` writes it); an
  editor that reordered the palette leaves colours to be matched instead.
  """
  if image.mode != "P":
    return len(image.getbands()) == 1
  palette = np.asarray(image.getpalette() or [], np.int64).reshape(-1, 3)
  used = np.unique(np.asarray(image))
  class_colors = class_table.palette().astype(np.int64)
  return bool(
      used.max() < min(len(palette), len(class_colors))
      and np.array_equal(palette[used], class_colors[used])
  )


def _labels_from_palette_colors(
    path: epath.PathLike, image: Image.Image, class_table: labelling.ClassTable
) -> np.ndarray:
  """Class ids of an image painted in the class colours; raises otherwise."""
  colors = np.asarray(image.convert("RGB")).astype(np.int64)
  palette = class_table.palette().astype(np.int64)
  codes = (colors[..., 0] << 16) | (colors[..., 1] << 8) | colors[..., 2]
  palette_codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
  labels = np.full(codes.shape, -1, np.int64)
  # Later classes first, so that a colour two classes share maps to the lower
  # id.
  for class_id in reversed(range(class_table.num_classes)):
    labels[codes == palette_codes[class_id]] = class_id
  if np.any(labels < 0):
    unknown = sorted({tuple(c) for c in colors[labels < 0][:1000].tolist()})
    raise InputError(
        f"The label map {path} has colours outside the class palette, e.g."
        f" {unknown[:5]}; paint only with the palette's colours (see"
        " --labels_out's preview) or give an index PNG."
    )
  return labels


def read_labels(
    path: epath.PathLike,
    image_shape: tuple[int, ...],
    class_table: labelling.ClassTable,
) -> np.ndarray:
  """Returns the label map at `path` as int32 class ids [H, W].

  Greyscale and palette PNGs hold the ids themselves; an RGB PNG is read as
  colours of `class_table`'s palette.

  Raises:
    InputError: unreadable, wrong size, an id outside the table or a colour
      outside the palette.
  """
  image = _open(path, "label map")
  if _holds_class_ids(image, class_table):
    labels = np.asarray(image).astype(np.int64)
    bad = labels >= class_table.num_classes
    if np.any(bad):
      raise InputError(
          f"The label map {path} holds ids {sorted(set(labels[bad].tolist()))[:8]}"
          f" but the model's classes are 0..{class_table.num_classes - 1}"
          f" ({', '.join(class_table.names)})."
      )
  else:
    labels = _labels_from_palette_colors(path, image, class_table)
  if labels.shape != tuple(image_shape[:2]):
    raise InputError(
        f"The label map {path} is {labels.shape[1]}x{labels.shape[0]} pixels"
        f" but the image is {image_shape[1]}x{image_shape[0]}."
    )
  return labels.astype(np.int32)


def check_output_path(path: epath.PathLike) -> epath.Path:
  """Returns `path` if it names a PNG, else raises InputError."""
  path = epath.Path(path)
  if path.suffix.lower() != OUTPUT_SUFFIX:
    raise InputError(
        f"Outputs are written as PNG, so that known pixels keep their exact"
        f" values; name {path} with a .png suffix."
    )
  return path


def write_image(path: epath.PathLike, image: np.ndarray) -> None:
  """Writes a uint8 RGB [H, W, 3] image as PNG, atomically."""
  path = check_output_path(path)
  atomic_files.write_png(path, Image.fromarray(image, "RGB"))


def write_labels(
    path: epath.PathLike,
    labels: np.ndarray,
    class_table: labelling.ClassTable,
) -> epath.Path:
  """Writes a label map as an index PNG that shows in the class colours.

  The PNG is palette-mode: its values are the class ids (read back by
  `read_labels`) and its palette the class colours, so an image editor shows
  and paints it in colour. A preview, `<name>_preview.png`, is written
  beside it in plain RGB.

  Returns:
    The preview's path.
  """
  path = check_output_path(path)
  index_image = Image.fromarray(labels.astype(np.uint8), "P")
  index_image.putpalette(class_table.palette().ravel().tolist())
  atomic_files.write_png(path, index_image)
  preview = path.with_name(path.stem + "_preview" + OUTPUT_SUFFIX)
  write_image(preview, class_table.colorize(labels))
  return preview
