"""Fuzzing the readers of strangers' files: images, masks and label maps.

Random bytes, valid files cut short at every size, valid headers followed by
noise and an image claiming 900 million pixels: each reader either returns a valid
array or raises its `InputError` naming the file, never another exception,
and never hangs (each read is given seconds; a hang fails the test).
"""

import io
import signal
import struct
import zlib

import numpy as np
from PIL import Image
import pytest

from spg_jax.data import classes
from spg_jax.inference import image_files

_TABLE = classes.get_class_table("cityscapes_categories")
_SHAPE = (12, 16)
# Seconds one read may take before it counts as a hang.
_READ_SECONDS = 10


def _encoded(image: Image.Image, fmt: str) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, fmt)
  return buffer.getvalue()


def _valid_files() -> dict[str, bytes]:
  rng = np.random.default_rng(0)
  rgb = Image.fromarray(rng.integers(0, 256, _SHAPE + (3,), np.uint8))
  labels = Image.fromarray(rng.integers(0, 8, _SHAPE, np.uint8))
  return {"png": _encoded(rgb, "PNG"), "jpeg": _encoded(rgb, "JPEG"),
          "labels": _encoded(labels, "PNG"), "bmp": _encoded(rgb, "BMP"),
          "gif": _encoded(labels.convert("P"), "GIF")}


def _cases() -> list[tuple[str, bytes]]:
  rng = np.random.default_rng(1)
  cases = [(f"random{size}", rng.bytes(size)) for size in
           (0, 1, 7, 64, 1000, 5000)]
  for name, data in _valid_files().items():
    cases += [(f"{name}-cut{cut}", data[:cut])
              for cut in sorted(set(np.linspace(1, len(data) - 1, 12,
                                                dtype=int)))]
    cases.append((f"{name}-noise", data[:32] + rng.bytes(len(data))))
  cases.append(("png-huge", _png_claiming(30_000, 30_000)))
  return cases


def _png_claiming(width: int, height: int) -> bytes:
  """A well-formed PNG header claiming `width` x `height` RGB pixels, with
  no pixel data: a decompression bomb's first bytes."""

  def chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))

  header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
          + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


_READERS = {
    "image": image_files.read_image,
    "mask": lambda path: image_files.read_mask(path, _SHAPE),
    "labels": lambda path: image_files.read_labels(path, _SHAPE, _TABLE),
}


def _alarm(signum, frame):
  raise TimeoutError(f"a read took over {_READ_SECONDS} s")


@pytest.mark.parametrize("reader", sorted(_READERS))
def test_every_bad_file_gets_a_clear_error_and_none_hangs(tmp_path, reader):
  previous = signal.signal(signal.SIGALRM, _alarm)
  try:
    for name, data in _cases():
      path = tmp_path / f"{name}.png"
      path.write_bytes(data)
      signal.alarm(_READ_SECONDS)
      try:
        result = _READERS[reader](path)
      except image_files.InputError as error:
        assert str(path) in str(error), name
        if name == "png-huge":
          assert "is too large to read safely" in str(error)
      else:
        # Some cut files still decode (JPEG's end marker is optional).
        assert result.shape[:2] == _SHAPE, name
      finally:
        signal.alarm(0)
  finally:
    signal.signal(signal.SIGALRM, previous)
