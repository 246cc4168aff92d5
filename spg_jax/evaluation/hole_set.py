"""A fixed set of holes, drawn once from a seed and kept as PNG files.

Every method that evaluation compares fills the same holes, in every run, so
that their numbers compare across methods and runs. A hole set is a
directory:

  mask_00000.png ...  uint8 [H, W], `HOLE_VALUE` (255) = hole, 0 = known
  manifest.json       the settings that drew the holes, and each file's
                      SHA-256 and hole fraction

Mask i is `spg_jax.data.masks.make_mask_fn(mask_config, height, width)` at
the stateless seed [seed, i]: the project's own generator, so a config's
holes look the same here as in training. The directory is written under a
temporary name and renamed into place once complete, so an interrupted
write leaves nothing that loads; loading checks every file against the
manifest and names the file that fails.
"""

import dataclasses
import hashlib
import io
import json
import os
from typing import Any

from etils import epath
import ml_collections
import numpy as np
from PIL import Image

from spg_jax.runtime import atomic_files

# Bumped when the layout or the meaning of a manifest field changes.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# A hole pixel's value in the PNG files; known pixels are 0.
HOLE_VALUE = 255
# The manifest fields that define a hole set; equal fields, equal holes.
_SETTINGS = ("format_version", "seed", "height", "width", "num_masks",
             "mask_config")


@dataclasses.dataclass(frozen=True, eq=False)  # eq would compare arrays.
class HoleSet:
  """A hole set as loaded and verified.

  Attributes:
    masks: float32 [N, H, W, 1], 1 = hole, as the input pipeline's masks.
    seed: the seed the holes were drawn from.
    manifest: the parsed manifest.json: the settings and every file's entry.
  """

  masks: np.ndarray
  seed: int
  manifest: dict[str, Any]


def mask_file_name(index: int) -> str:
  """The file name of mask `index`: mask_00000.png, mask_00001.png, ..."""
  return f"mask_{index:05d}.png"


def _how_to_fix(directory: epath.Path) -> str:
  return (
      f"delete {directory} and run the evaluation again to regenerate it, or"
      " point it at another directory"
  )


def _check_positive(name: str, value: Any) -> None:
  if not isinstance(value, int) or value < 1:
    raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")


def _settings(
    mask_config: ml_collections.ConfigDict,
    height: int,
    width: int,
    num_masks: int,
    seed: int,
) -> dict[str, Any]:
  """The defining manifest fields, as JSON reads them back (tuples as lists)."""
  _check_positive("height", height)
  _check_positive("width", width)
  _check_positive("num_masks", num_masks)
  if not isinstance(seed, int):
    raise ValueError(f"seed must be an integer; got {seed!r}.")
  return json.loads(json.dumps({
      "format_version": FORMAT_VERSION,
      "seed": seed,
      "height": height,
      "width": width,
      "num_masks": num_masks,
      "mask_config": mask_config.to_dict(),
  }))


def write_hole_set(
    directory: epath.PathLike,
    mask_config: ml_collections.ConfigDict,
    height: int,
    width: int,
    num_masks: int,
    seed: int,
) -> None:
  """Draws `num_masks` holes of height x width and writes them to `directory`.

  Raises:
    FileExistsError: `directory` exists; a hole set is never overwritten.
    ValueError: a size, count or seed is not an integer in range, or the
      mask config is invalid (as `masks.make_mask_fn` checks it).
  """
  # Imported here: drawing holes takes TensorFlow, loading a set does not.
  from spg_jax.data import masks  # pylint: disable=g-import-not-at-top

  directory = epath.Path(directory)
  settings = _settings(mask_config, height, width, num_masks, seed)
  if directory.exists():
    raise FileExistsError(
        f"{directory} already exists and a hole set is never overwritten;"
        " delete it first to draw a new one."
    )
  mask_fn = masks.make_mask_fn(mask_config, height, width)
  partial = directory.parent / f".{directory.name}.partial-{os.getpid()}"
  partial.rmtree(missing_ok=True)  # Left by a killed writer with our pid.
  partial.mkdir(parents=True)
  try:
    entries = []
    for index in range(num_masks):
      hole = np.asarray(mask_fn(np.array([seed, index], np.int64)))[..., 0] > 0
      data = atomic_files.png_bytes(
          np.where(hole, HOLE_VALUE, 0).astype(np.uint8)
      )
      name = mask_file_name(index)
      (partial / name).write_bytes(data)
      entries.append({
          "file": name,
          "sha256": hashlib.sha256(data).hexdigest(),
          "hole_fraction": float(hole.mean()),
      })
    manifest = settings | {"masks": entries}
    (partial / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True)
    )
    partial.rename(directory)
  except BaseException:
    partial.rmtree(missing_ok=True)
    raise


def _read_manifest(directory: epath.Path) -> dict[str, Any]:
  """Parses and checks `directory`'s manifest; raises naming what is wrong."""
  path = directory / MANIFEST
  if not path.exists():
    raise FileNotFoundError(
        f"{path} is missing, so {directory} is not a complete hole set (an"
        " interrupted write, or files put there by hand);"
        f" {_how_to_fix(directory)}."
    )
  try:
    manifest = json.loads(path.read_text())
  except ValueError as error:
    raise ValueError(
        f"{path} is not valid JSON ({error}); {_how_to_fix(directory)}."
    ) from None
  missing = [key for key in _SETTINGS + ("masks",) if key not in manifest]
  if missing:
    raise ValueError(
        f"{path} lacks {', '.join(missing)}; {_how_to_fix(directory)}."
    )
  if manifest["format_version"] != FORMAT_VERSION:
    raise ValueError(
        f"{path} has format version {manifest['format_version']!r}, this"
        f" spg_jax reads {FORMAT_VERSION}; {_how_to_fix(directory)}."
    )
  if len(manifest["masks"]) != manifest["num_masks"]:
    raise ValueError(
        f"{path} lists {len(manifest['masks'])} masks but num_masks is"
        f" {manifest['num_masks']}; {_how_to_fix(directory)}."
    )
  return manifest


def _read_mask(
    directory: epath.Path, entry: dict[str, Any], height: int, width: int
) -> np.ndarray:
  """Returns one mask file as bool [height, width] after checking its hash.

  The bytes are read once, then hashed and decoded, so the checked bytes are
  the decoded ones.
  """
  path = directory / entry["file"]
  if not path.exists():
    raise FileNotFoundError(
        f"The mask {path} listed in {MANIFEST} is missing;"
        f" {_how_to_fix(directory)}."
    )
  data = path.read_bytes()
  if hashlib.sha256(data).hexdigest() != entry["sha256"]:
    raise ValueError(
        f"The mask {path} changed since it was written (its SHA-256 differs"
        f" from {MANIFEST}'s), so its holes may differ from other runs';"
        f" {_how_to_fix(directory)}."
    )
  values = np.asarray(Image.open(io.BytesIO(data)))
  if values.shape != (height, width):
    raise ValueError(
        f"The mask {path} has shape {values.shape} but the hole set is"
        f" {height}x{width} (height x width) masks; {_how_to_fix(directory)}."
    )
  return values > 0


def load_hole_set(directory: epath.PathLike) -> HoleSet:
  """Loads a hole set, checking every file against the manifest.

  Raises:
    FileNotFoundError: the manifest or a mask file is missing.
    ValueError: the manifest is malformed, or a mask file's hash or size
      differs from the manifest's.
  """
  directory = epath.Path(directory)
  manifest = _read_manifest(directory)
  height, width = manifest["height"], manifest["width"]
  masks = np.empty([manifest["num_masks"], height, width, 1], np.float32)
  for index, entry in enumerate(manifest["masks"]):
    masks[index, ..., 0] = _read_mask(directory, entry, height, width)
  return HoleSet(masks=masks, seed=manifest["seed"], manifest=manifest)


def _flatten(settings: dict[str, Any]) -> dict[str, Any]:
  """The defining fields, the mask config's as 'mask_config.<field>'."""
  flat = {key: settings[key] for key in _SETTINGS if key != "mask_config"}
  for key, value in settings["mask_config"].items():
    flat[f"mask_config.{key}"] = value
  return flat


def get_or_create(
    directory: epath.PathLike,
    mask_config: ml_collections.ConfigDict,
    height: int,
    width: int,
    num_masks: int,
    seed: int,
) -> HoleSet:
  """Loads the hole set in `directory`, drawing and writing it first if absent.

  Raises:
    ValueError: `directory` holds a hole set drawn with other settings (the
      message names the differing fields), or one that fails to load.
    FileNotFoundError: `directory` exists but is not a complete hole set.
  """
  directory = epath.Path(directory)
  requested = _settings(mask_config, height, width, num_masks, seed)
  if not directory.exists():
    write_hole_set(directory, mask_config, height, width, num_masks, seed)
    return load_hole_set(directory)
  stored = _flatten(_read_manifest(directory))
  asked = _flatten(requested)
  differing = [
      f"{key} (stored {stored.get(key)!r}, asked {asked.get(key)!r})"
      for key in sorted(set(stored) | set(asked))
      if stored.get(key) != asked.get(key)
  ]
  if differing:
    raise ValueError(
        f"The hole set in {directory} was drawn with other settings:"
        f" {'; '.join(differing)}. Ask for the settings it was drawn with,"
        f" use another directory, or delete {directory} to draw it anew."
    )
  return load_hole_set(directory)
