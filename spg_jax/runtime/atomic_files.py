"""Writing files so that a reader never sees half of one.

Each write goes to a temporary sibling first and is renamed over the target,
so an interrupted run leaves the previous file (or none), never a truncated
one. Paths go through `etils.epath`, so a workdir may be on GCS.
"""

import io
import os
import secrets

from etils import epath
import numpy as np
from PIL import Image


def write_bytes(path: epath.PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically, creating parent folders.

  The rename replaces a symbolic link at `path` rather than writing through
  it. On a local disk the temporary file is newly created under a random
  name, so a link planted where it will be (in a folder others can write
  to) cannot send the data elsewhere either.
  """
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if "://" in os.fspath(path):  # A bucket: no links to follow.
    partial = path.parent / f".{path.name}.partial-{os.getpid()}"
    partial.write_bytes(data)
  else:
    partial = _new_local_file(path, data)
  partial.replace(path)


def _new_local_file(path: epath.Path, data: bytes) -> epath.Path:
  """A new file beside `path` holding `data`, created exclusively and
  without following links (its mode is the umask's, as for `open`)."""
  flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
  while True:
    partial = path.parent / f".{path.name}.partial-{secrets.token_hex(8)}"
    try:
      descriptor = os.open(partial, flags, 0o666)
    except FileExistsError:
      continue
    with os.fdopen(descriptor, "wb") as file:
      file.write(data)
    return partial


def write_text(path: epath.PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically."""
  write_bytes(path, text.encode("utf-8"))


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
  """Encodes a uint8 array ([H, W] or [H, W, C]) or a PIL image as PNG."""
  if isinstance(image, np.ndarray):
    image = Image.fromarray(image)
  buffer = io.BytesIO()
  image.save(buffer, format="PNG")
  return buffer.getvalue()


def write_png(path: epath.PathLike, image: np.ndarray | Image.Image) -> None:
  """Writes `image` to `path` as PNG, atomically."""
  write_bytes(path, png_bytes(image))
