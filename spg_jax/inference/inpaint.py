r"""Inference: fill the holes of images of any size, from predicted or edited labels.

Python:

  inpainter = inpaint.Inpainter.from_workdir("/tmp/spg_synthetic")
  labels, output = inpainter.complete(images, holes, known_labels)
  output = inpainter.render(images, holes, edited_labels)

Command line (one image, or every image of a folder):

  python -m spg_jax.inference.inpaint --workdir=W --image=IN.png --mask=MASK.png \
      --out=OUT.png [--known_labels=L.png] [--labels=EDITED.png] \
      [--labels_out=PRED.png]
  python -m spg_jax.inference.inpaint --workdir=W --image_dir=IN/ --mask_dir=MASKS/ \
      --out_dir=OUT/

SP-Net needs the labels of the known region. A run trained with a segmenter
(`config.schedule.seg.steps` > 0) labels them itself; `--known_labels` (any
segmentation of the image: ground truth, or another segmenter's output)
gives them instead, and wins. A run without a segmenter, given no labels,
counts every known pixel as class 0 ('void' in the Cityscapes categories).
Class 0 itself is common in training; what SP-Net never saw is a known
region that is all one class, so the predicted labels, and the fill, are
poorer. `--labels` skips SP-Net: SG-Net renders the hole from the
given map, the way to get a different completion after editing the map that
`--labels_out` wrote.

Known pixels of the output equal the input's exactly. The networks need sides
that are multiples of 2**num_downsamplings: `--fit=pad` (default) pads the
image by reflection and crops the result; `--fit=resize` runs the networks at
the trained resolution and scales only the filled hole back to full size.
"""

from collections.abc import Sequence
import dataclasses
import json
import math
import sys

from absl import app
from absl import flags
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image
import tqdm

from spg_jax.data import classes
from spg_jax.data import labelling
from spg_jax.inference import image_files
from spg_jax.models import segmenter
from spg_jax.models import spg
from spg_jax.runtime import commands
from spg_jax.training import checkpoints
from spg_jax.training import steps

FIT_MODES = ("pad", "resize")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_config(workdir: epath.PathLike) -> ml_collections.ConfigDict:
  """Returns the config a training run saved in `workdir/config.json`."""
  path = epath.Path(workdir) / "config.json"
  if not path.exists():
    raise image_files.InputError(
        f"{path} does not exist: --workdir must be the directory of a"
        " training run (python -m spg_jax.main --workdir=...)."
    )
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def to_float(images: np.ndarray | jax.Array) -> np.ndarray | jax.Array:
  """uint8 images -> float32 in [-1, 1], the networks' and metrics' range;
  NumPy or JAX arrays alike (also under jit)."""
  return images.astype(np.float32) / 127.5 - 1.0


def to_uint8(images: np.ndarray | jax.Array) -> np.ndarray:
  """Images in [-1, 1] -> uint8, clipped and rounded."""
  images = np.asarray(images)
  return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


@dataclasses.dataclass
class Inpainter:
  """A trained run's networks, ready for images of any size.

  Inputs are batches: images uint8 [B, H, W, 3], holes bool [B, H, W]
  (True = missing), label maps int [B, H, W] of class ids. Each distinct
  (batch, padded height, padded width) compiles once and is reused.
  """

  config: ml_collections.ConfigDict
  networks: spg.Networks
  params: dict[str, spg.Params]
  step: int

  def __post_init__(self):
    self._predict = jax.jit(self._predict_fn)
    self._render = jax.jit(self._render_fn)
    self._segment = jax.jit(self._segment_fn)

  @classmethod
  def from_workdir(
      cls, workdir: epath.PathLike, step: int | None = None
  ) -> "Inpainter":
    """Loads the saved config and a checkpoint of a training run.

    Args:
      workdir: the training run's directory.
      step: the saved step to load; None loads the latest.

    Raises:
      image_files.InputError: the run has no checkpoint yet, or none of
        `step`.
    """
    config = load_config(workdir)
    networks = spg.Networks.from_config(config)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract_state = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                          sharding=device),
        jax.eval_shape(
            lambda: steps.create_train_state(
                config, networks, jax.random.key(0)
            )
        ),
    )
    manager = checkpoints.make_manager(workdir, config)
    try:
      state, meta = checkpoints.restore_latest(manager, abstract_state, step)
    except ValueError as error:
      raise image_files.InputError(str(error)) from None
    if meta is None:
      raise image_files.InputError(
          f"{epath.Path(workdir) / checkpoints.CHECKPOINT_DIR} holds no"
          " checkpoint yet; train first or wait for the first save."
      )
    params = {
        name: params
        for name, params in state.params.items()
        if name in ("seg", "sp", "sg")
    }
    return cls(config, networks, params, int(meta["step"]))

  @property
  def class_table(self) -> labelling.ClassTable:
    return classes.get_class_table(self.config.data.classes)

  @property
  def multiple(self) -> int:
    """The networks' sides must be multiples of this."""
    model = self.config.model
    multiple = 2 ** max(model.sp_generator.num_downsamplings,
                        model.sg_generator.num_downsamplings)
    if self.has_segmenter:
      multiple = math.lcm(
          multiple, segmenter.size_multiple(model.segmenter.output_stride)
      )
    return multiple

  def _predict_fn(self, params, image, known_labels, mask):
    _, probabilities = self.networks.predict_labels(
        params["sp"], image, self.networks.one_hot(known_labels), mask
    )
    return jnp.argmax(probabilities, axis=-1).astype(jnp.int32)

  def _segment_fn(self, params, image, labels, mask):
    del labels  # The segmenter reads no labels; `_run` passes them to all.
    return self.networks.segment(params["seg"], image, mask).astype(jnp.int32)

  def _render_fn(self, params, image, labels, mask):
    generated, _ = self.networks.render(
        params["sg"], image, self.networks.one_hot(labels), mask
    )
    return generated

  def _check(self, images: np.ndarray, holes: np.ndarray) -> None:
    height, width = images.shape[1:3]
    if min(height, width) < self.multiple:
      raise image_files.InputError(
          f"The image is {width}x{height} pixels; this model needs at least"
          f" {self.multiple}x{self.multiple}."
      )
    if holes.shape != images.shape[:3]:
      raise image_files.InputError(
          f"Holes of shape {holes.shape} do not match images of shape"
          f" {images.shape}."
      )
    if np.any(holes.reshape(len(holes), -1).all(axis=1)):
      raise image_files.InputError(
          "The mask covers the whole image: nothing is left to fill the hole"
          " from. Leave part of the image unmasked."
      )

  def _run(self, fn, images, holes, labels) -> np.ndarray:
    """Runs `fn` on batches padded by reflection to the networks' multiple.

    The holes are reflected with the image, so that the padding's mirror
    images of hole pixels are holes too and their content is never read.
    """
    height, width = images.shape[1:3]
    pad = [(0, 0), (0, -height % self.multiple), (0, -width % self.multiple)]
    result = fn(
        self.params,
        np.pad(to_float(images), pad + [(0, 0)], mode="reflect"),
        np.pad(labels, pad, mode="reflect"),
        np.pad(holes, pad, mode="reflect").astype(np.float32)[..., None],
    )
    return np.asarray(result)[:, :height, :width]

  @property
  def has_segmenter(self) -> bool:
    return self.networks.seg is not None

  def label_known_region(
      self, images: np.ndarray, holes: np.ndarray
  ) -> np.ndarray:
    """The known region's labels [B, H, W] as SP-Net gets them without any:
    the run's segmenter's, or class 0 everywhere in a run without one.
    Inside the holes the values mean nothing; SP-Net never reads them."""
    images, holes = np.asarray(images), np.asarray(holes, bool)
    self._check(images, holes)
    if not self.has_segmenter:
      return np.zeros(holes.shape, np.int32)
    return self._run(self._segment, images, holes,
                     np.zeros(holes.shape, np.int32))

  def predict_labels(
      self,
      images: np.ndarray,
      holes: np.ndarray,
      known_labels: np.ndarray | None = None,
  ) -> np.ndarray:
    """Completes the label maps: `known_labels` outside the holes, SP-Net's
    prediction inside. Without `known_labels`, `label_known_region` gives
    them."""
    images, holes = np.asarray(images), np.asarray(holes, bool)
    self._check(images, holes)
    if known_labels is None:
      known_labels = self.label_known_region(images, holes)
    known_labels = np.asarray(known_labels, np.int32)
    if not holes.any():
      return known_labels
    predicted = self._run(self._predict, images, holes, known_labels)
    return np.where(holes, predicted, known_labels)

  def render(
      self, images: np.ndarray, holes: np.ndarray, labels: np.ndarray
  ) -> np.ndarray:
    """Fills the holes guided by `labels`; known pixels are returned as given."""
    images, holes = np.asarray(images), np.asarray(holes, bool)
    self._check(images, holes)
    if not holes.any():
      return images.copy()
    generated = self._run(self._render, images, holes,
                          np.asarray(labels, np.int32))
    return np.where(holes[..., None], to_uint8(generated), images)

  def complete(
      self,
      images: np.ndarray,
      holes: np.ndarray,
      known_labels: np.ndarray | None = None,
  ) -> tuple[np.ndarray, np.ndarray]:
    """Predicts the hole's labels, then renders from them: (labels, images)."""
    labels = self.predict_labels(images, holes, known_labels)
    return labels, self.render(images, holes, labels)


def _resize(array: np.ndarray, size: tuple[int, int], nearest: bool):
  """Resizes one [H, W(, C)] array to `size` (width, height) with PIL."""
  method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
  return np.asarray(Image.fromarray(array).resize(size, method))


def inpaint_file(
    inpainter: Inpainter,
    image: np.ndarray,
    hole: np.ndarray,
    known_labels: np.ndarray | None,
    labels: np.ndarray | None,
    fit: str,
) -> tuple[np.ndarray, np.ndarray]:
  """Inpaints one image [H, W, 3]; returns (labels [H, W], image [H, W, 3]).

  `labels`, if given, guides SG-Net instead of SP-Net's prediction;
  `known_labels`, if given, are the known region's labels, else
  `Inpainter.label_known_region` gives them. With `fit='resize'` the
  networks run at the trained resolution and only the hole of the full-size
  image takes their scaled-up result.
  """
  if fit not in FIT_MODES:
    raise ValueError(f"Unknown fit {fit!r}; choose one of {FIT_MODES}.")

  def batch_of(labels_or_none):
    return None if labels_or_none is None else labels_or_none[None]

  if fit == "pad" or not hole.any():
    if labels is None:
      labels = inpainter.predict_labels(
          image[None], hole[None], batch_of(known_labels)
      )[0]
    return labels, inpainter.render(image[None], hole[None], labels[None])[0]
  size = inpainter.config.data.image_size
  full = (hole.shape[1], hole.shape[0])
  small_hole = _resize(hole.astype(np.uint8) * 255, (size, size), False) > 0
  small_image = _resize(image, (size, size), False)
  if labels is None:
    small_known = None
    if known_labels is not None:
      small_known = _resize(known_labels.astype(np.uint8), (size, size), True)
    small_labels = inpainter.predict_labels(
        small_image[None], small_hole[None], batch_of(small_known)
    )[0]
    if known_labels is None:
      # The known region's labels, as labelled at the trained resolution.
      known_labels = _resize(small_labels.astype(np.uint8), full, True)
    labels = np.where(
        hole, _resize(small_labels.astype(np.uint8), full, True), known_labels
    ).astype(np.int32)
  else:
    small_labels = _resize(labels.astype(np.uint8), (size, size), True)
  small_output = inpainter.render(
      small_image[None], small_hole[None], small_labels[None]
  )[0]
  return labels, np.where(hole[..., None], _resize(small_output, full, False),
                          image)


@dataclasses.dataclass(frozen=True)
class Job:
  """The files of one image to inpaint."""

  image: epath.Path
  mask: epath.Path
  out: epath.Path
  known_labels: epath.Path | None = None
  labels: epath.Path | None = None
  labels_out: epath.Path | None = None


def run_job(inpainter: Inpainter, job: Job, fit: str) -> None:
  """Reads, checks and inpaints one job's files and writes its outputs."""
  image_files.check_output_path(job.out)
  if job.labels_out:
    image_files.check_output_path(job.labels_out)
  image = image_files.read_image(job.image)
  hole = image_files.read_mask(job.mask, image.shape)
  table = inpainter.class_table

  def read_labels(path: epath.Path | None) -> np.ndarray | None:
    return path and image_files.read_labels(path, image.shape, table)

  labels, output = inpaint_file(
      inpainter, image, hole, read_labels(job.known_labels),
      read_labels(job.labels), fit,
  )
  image_files.write_image(job.out, output)
  if job.labels_out:
    image_files.write_labels(job.labels_out, labels, table)


def folder_jobs(
    image_dir: epath.PathLike, mask_dir: epath.PathLike, out_dir: epath.PathLike
) -> list[Job]:
  """One job per image of `image_dir`, with the mask of the same name (.png)."""
  image_dir, mask_dir, out_dir = map(epath.Path, (image_dir, mask_dir, out_dir))
  if not image_dir.is_dir():
    raise image_files.InputError(f"--image_dir {image_dir} is not a folder.")
  images = sorted(
      path for path in image_dir.iterdir()
      if path.suffix.lower() in IMAGE_SUFFIXES
  )
  if not images:
    raise image_files.InputError(
        f"--image_dir {image_dir} holds no {'/'.join(IMAGE_SUFFIXES)} files."
    )
  stems = [path.stem for path in images]
  repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
  if repeated:
    raise image_files.InputError(
        f"--image_dir {image_dir} has several images named {repeated} (with"
        " different suffixes); each would write the same output. Rename them."
    )
  if out_dir.resolve() == image_dir.resolve():
    raise image_files.InputError(
        "--out_dir is --image_dir: the outputs would overwrite the inputs."
        " Choose another --out_dir."
    )
  return [
      Job(path, mask_dir / (stem + ".png"), out_dir / (stem + ".png"))
      for path, stem in zip(images, stems)
  ]


def _define_flags() -> dict[str, flags.FlagHolder]:
  """The command line's flags, defined only when run as a program."""
  path_flags = {
      "workdir": "The training run's workdir (config.json, checkpoints/).",
      "image": "The image to inpaint (PNG or JPEG, 8-bit).",
      "mask": "Its hole: a PNG of the same size, non-zero (white) = hole.",
      "out": "Where to write the inpainted image (.png).",
      "known_labels": "Labels of the known region (index or palette-colour"
                      " PNG). Without it the run's segmenter labels it; a"
                      " run without one counts it as class 0, which"
                      " degrades SP-Net's prediction.",
      "labels": "A full label map (e.g. an edited --labels_out) that guides"
                " SG-Net inside the hole instead of SP-Net's prediction.",
      "labels_out": "Also write the completed label map here (.png), plus a"
                    " coloured *_preview.png.",
      "image_dir": "Folder mode: inpaint every image in this folder...",
      "mask_dir": "...with the mask of the same name (.png) from here...",
      "out_dir": "...writing <name>.png here.",
  }
  holders = {
      name: flags.DEFINE_string(name, None, help_text)
      for name, help_text in path_flags.items()
  }
  holders["fit"] = flags.DEFINE_enum(
      "fit", "pad", FIT_MODES,
      "pad: reflect-pad to the networks' multiple, inpaint at full size."
      " resize: inpaint at the trained resolution, scale the hole back.",
  )
  flags.mark_flag_as_required("workdir")
  return holders


def main(argv: Sequence[str], holders: dict[str, flags.FlagHolder]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  values = {name: holder.value for name, holder in holders.items()}
  single = [values[name] for name in ("image", "mask", "out")]
  folder = [values[name] for name in ("image_dir", "mask_dir", "out_dir")]
  if all(single) == all(folder) or (any(single) and any(folder)):
    raise app.UsageError(
        "Give either --image, --mask and --out, or --image_dir, --mask_dir and"
        " --out_dir."
    )
  label_flags = [name for name in ("known_labels", "labels", "labels_out")
                 if values[name]]
  if all(folder) and label_flags:
    raise app.UsageError(
        f"--{', --'.join(label_flags)} apply to one image; run them with"
        " --image, --mask and --out."
    )
  optional = {
      name: values[name] and epath.Path(values[name])
      for name in ("known_labels", "labels", "labels_out")
  }
  try:
    if all(single):
      jobs = [Job(*map(epath.Path, single), **optional)]
    else:
      jobs = folder_jobs(*folder)
    inpainter = Inpainter.from_workdir(values["workdir"])
  except image_files.InputError as error:
    sys.exit(f"Input error: {error}")
  failures = []
  for job in tqdm.tqdm(jobs, unit="image", disable=len(jobs) == 1):
    try:
      run_job(inpainter, job, values["fit"])
    except image_files.InputError as error:
      failures.append(str(error))
  if failures:
    sys.exit("Input error: " + "\nInput error: ".join(failures))


def run() -> None:
  """The command's entry point."""
  commands.run(_define_flags, main)


if __name__ == "__main__":
  run()
