r"""Writes archives in the layout of Cityscapes' downloads, from synthetic scenes.

TFDS's `cityscapes/semantic_segmentation` builder reads the two official
archives `leftImg8bit_trainvaltest.zip` and `gtFine_trainvaltest.zip`, which
need a registration to download. This module writes archives of the same
names, folders, file names and PNG encodings (8-bit RGB frames of 1024x2048,
8-bit greyscale labelId maps, plus the colour previews), filled with the
synthetic street scenes, so that the builder, the pipeline and their errors
can be tested and benchmarked anywhere:

  python -m spg_jax.testing.cityscapes_archives --out=/tmp/fake_cityscapes \
      --train=64 --val=16 --noise=1
"""

from collections.abc import Iterator, Mapping, Sequence
import dataclasses
import io
import zipfile

from absl import app
from absl import flags
from etils import epath
import numpy as np

from spg_jax.data import cityscapes_labels
from spg_jax.data import preparation
from spg_jax.data.builders import street_scenes
from spg_jax.runtime import atomic_files
from spg_jax.runtime import commands

IMAGES_ARCHIVE = preparation.CITYSCAPES_IMAGES_ARCHIVE
LABELS_ARCHIVE = preparation.CITYSCAPES_LABELS_ARCHIVE
FRAME_SHAPE = (1024, 2048)
SPLITS = ("train", "val", "test")

# The labelId drawn for each synthetic category: its most common label.
CATEGORY_LABEL_IDS = (0, 7, 11, 17, 21, 23, 24, 26)


@dataclasses.dataclass(frozen=True)
class Frame:
  """One Cityscapes frame: its name parts, image and labelId map."""

  city: str
  sequence: int
  frame: int
  image: np.ndarray  # uint8 [1024, 2048, 3]
  label_ids: np.ndarray  # uint8 [1024, 2048]

  @property
  def image_id(self) -> str:
    return f"{self.city}_{self.sequence:06d}_{self.frame:06d}"


def _colorize(label_ids: np.ndarray) -> np.ndarray:
  palette = np.zeros([256, 3], np.uint8)
  for label in cityscapes_labels.LABELS:
    palette[label.label_id] = label.color
  return palette[label_ids]


def _write_zip(path: epath.Path, members: Iterator[tuple[str, bytes]]) -> None:
  """Writes a stored (PNGs are compressed already) zip, atomically."""
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
    for name, data in members:
      archive.writestr(name, data)
  atomic_files.write_bytes(path, buffer.getvalue())


def _folders(root: str, frames: Mapping[str, Sequence[Frame]]):
  """Directory entries for every split and city, as the real archives have."""
  yield f"{root}/", b""
  for split in SPLITS:
    yield f"{root}/{split}/", b""
    for city in sorted({frame.city for frame in frames.get(split, ())}):
      yield f"{root}/{split}/{city}/", b""


def write_archives(
    manual_dir: epath.PathLike, frames: Mapping[str, Sequence[Frame]]
) -> None:
  """Writes both archives into `manual_dir`, holding `frames` per split."""
  manual_dir = epath.Path(manual_dir)
  manual_dir.mkdir(parents=True, exist_ok=True)
  for split, split_frames in frames.items():
    if split not in SPLITS:
      raise ValueError(f"Unknown split {split!r}; Cityscapes has {SPLITS}.")
    for frame in split_frames:
      if frame.image.shape != FRAME_SHAPE + (3,):
        raise ValueError(f"Frames are {FRAME_SHAPE}; got {frame.image.shape}.")

  def images():
    yield from _folders("leftImg8bit", frames)
    for split, split_frames in frames.items():
      for frame in split_frames:
        yield (
            f"leftImg8bit/{split}/{frame.city}/"
            f"{frame.image_id}_leftImg8bit.png",
            atomic_files.png_bytes(frame.image),
        )

  def labels():
    yield from _folders("gtFine", frames)
    for split, split_frames in frames.items():
      for frame in split_frames:
        stem = f"gtFine/{split}/{frame.city}/{frame.image_id}_gtFine"
        yield f"{stem}_labelIds.png", atomic_files.png_bytes(frame.label_ids)
        yield f"{stem}_color.png", atomic_files.png_bytes(_colorize(frame.label_ids))

  _write_zip(manual_dir / IMAGES_ARCHIVE, images())
  _write_zip(manual_dir / LABELS_ARCHIVE, labels())


def synthetic_frame(
    seed: Sequence[int], city: str, index: int, noise: float = 0.0
) -> Frame:
  """A synthetic street scene stretched to a 1024x2048 Cityscapes frame.

  The scene is rendered square at 256 pixels and scaled up (4x down, 8x
  across), labels with nearest neighbours. `noise` adds Gaussian pixel noise
  of that standard deviation, so that the PNG files compress about as badly
  as real photographs: noise=1 gives frames of about 2.5 MB (Cityscapes'
  average 2.3 MB).
  """
  rng = np.random.default_rng(seed)
  image, categories = street_scenes.render_scene(rng, 256)
  rows, columns = FRAME_SHAPE[0] // 256, FRAME_SHAPE[1] // 256
  image = np.repeat(np.repeat(image, rows, axis=0), columns, axis=1)
  if noise:
    image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255)
  label_ids = np.asarray(CATEGORY_LABEL_IDS, np.uint8)[categories]
  label_ids = np.repeat(np.repeat(label_ids, rows, axis=0), columns, axis=1)
  return Frame(city, index // 100, index % 100, image.astype(np.uint8),
               label_ids)


def _define_flags() -> dict[str, flags.FlagHolder]:
  """The command line's flags, defined only when run as a program, so that
  importing this module next to other programs' flags never clashes."""
  holders = {
      "out": flags.DEFINE_string("out", None, "Directory for the archives."),
      "noise": flags.DEFINE_float("noise", 1.0, "See synthetic_frame."),
  }
  for split, default in (("train", 16), ("val", 4), ("test", 2)):
    holders[split] = flags.DEFINE_integer(
        split, default, f"Frames in the {split} split."
    )
  flags.mark_flag_as_required("out")
  return holders


def main(argv: Sequence[str], holders: dict[str, flags.FlagHolder]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  out, noise = holders["out"].value, holders["noise"].value
  frames = {
      split: [
          synthetic_frame([split_index, i], "synthville", i, noise)
          for i in range(holders[split].value)
      ]
      for split_index, split in enumerate(SPLITS)
  }
  write_archives(out, frames)
  print(f"Wrote {IMAGES_ARCHIVE} and {LABELS_ARCHIVE} to {out}.")


def run() -> None:
  """The command's entry point."""
  commands.run(_define_flags, main)


if __name__ == "__main__":
  run()
