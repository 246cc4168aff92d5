r"""Compares SPG-Net, its ablations and classical baselines on fixed holes.

  python -m spg_jax.evaluation.compare --workdir=W --num_images=100 --out=DIR \
      [--methods=spg,spg_gt_known,sg_gt,sg_noseg,patchmatch,telea,...] \
      [--compare_workdir=sg_noseg=W2] [--holes_dir=DIR/holes] \
      [--hole_seed=0] [--boundary_width=3] [--edit_classes=3] [--data_dir=D] \
      [--step=S]

(`spg-evaluate` is the same command.) It reads the first `--num_images`
examples of the run's test split (`config.data.eval_split`) at the run's
image size through the project's input pipeline, and fills each image's
hole with every method of `spg_jax.evaluation.methods` (all by default).
The holes are a fixed set (`spg_jax.evaluation.hole_set`): drawn once from
`--hole_seed` with the run's `config.masks` and kept as PNG files in
`--holes_dir` (default DIR/holes), so every method, and every evaluation
pointed at the same folder, fills the same holes; an evaluation whose
settings differ from the folder's is refused. A method that cannot run (its
package missing, no guidance='none' run named for `sg_noseg`) is reported
with the reason and left out.

Each fill is scored on images in [0, 1] (L1, L2, PSNR, SSIM over the image
and over the hole; L1 over the hole pixels within `--boundary_width` pixels
of a boundary between true classes); SPG-Net's methods also on SP-Net's
labels inside the hole (mIoU and pixel accuracy, void left out). With a
segmenter in the run, it labels every fill as a whole image, and its mIoU
inside the hole against the labels that guided the fill (the true labels
for unguided methods) is the fill's label fidelity, beside its mIoU there on
the real image, the ceiling. The edit response relabels each hole as each
of the `--edit_classes` classes most frequent in the true holes, renders it
with SG-Net and counts the hole pixels the segmenter labels as that class.
Where the run's config.eval names converted weights (`lpips_weights`,
`fid_weights`; '' for the cache's), or the cache holds them, every fill
also gets LPIPS and the whole set FID (`perceptual_scores`); without them
the scores are left out with the reason and the command that makes them.
`spg_jax.evaluation.report` lists the files written to DIR.
"""

from collections.abc import Callable, Sequence
import copy
import dataclasses
import functools
import sys
from typing import Any

from absl import app
from absl import flags
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from spg_jax.data import data_source
from spg_jax.data import input_pipeline
from spg_jax.data import labelling
from spg_jax.evaluation import baselines
from spg_jax.evaluation import hole_set
from spg_jax.evaluation import methods
from spg_jax.evaluation import metrics
from spg_jax.evaluation import perceptual_scores
from spg_jax.evaluation import report
from spg_jax.inference import image_files
from spg_jax.inference import inpaint
from spg_jax.runtime import commands

# The default of --boundary_width (our choice): the hole pixels whose 7x7
# window crosses a class boundary, the edge and its nearest surroundings.
BOUNDARY_WIDTH = 3
# The default of --edit_classes.
EDIT_CLASSES = 3
# The default of --hole_seed: one fixed value, so that evaluations of
# different runs draw the same holes unless asked otherwise.
HOLE_SEED = 0
# The image that edits.png shows.
EDIT_EXAMPLE = 0


@functools.partial(jax.jit, static_argnames="boundary_width")
def _image_scores(outputs, images, holes, labels, boundary_width):
  """Per-image metrics [B] of uint8 fills; NaN where a region is empty."""
  output, image = inpaint.to_float(outputs), inpaint.to_float(images)
  mask = holes[..., None].astype(jnp.float32)
  has_hole = metrics.has_weight(mask)
  scores = {}
  for name, (function, on_hole) in metrics.IMAGE_METRICS.items():
    if on_hole:
      scores[name] = jnp.where(has_hole, function(output, image, mask), jnp.nan)
    else:
      scores[name] = function(output, image)
  band = metrics.class_boundary_band(labels, mask, boundary_width)
  scores["l1_boundary"] = jnp.where(
      metrics.has_weight(band), metrics.per_image_l1(output, image, band),
      jnp.nan,
  )
  return scores


_confusion = jax.jit(metrics.confusion_matrix, static_argnums=2)


def _in_batches(
    function: Callable[..., Any], batch_size: int, *arrays: np.ndarray,
    progress: tqdm.tqdm | None = None,
) -> Any:
  """`function` over slices of `arrays` along axis 0, results concatenated.

  `function` returns an array, a tuple of arrays and Nones, or a dict of
  arrays. A last slice shorter than `batch_size` is padded by repeating its
  last example, so that every call has one shape and compiles once.
  """
  total = len(arrays[0])
  results = []
  for start in range(0, total, batch_size):
    chunk = [array[start:start + batch_size] for array in arrays]
    count = len(chunk[0])
    if total > batch_size and count < batch_size:
      chunk = [np.concatenate([part, np.repeat(part[-1:], batch_size - count,
                                               axis=0)]) for part in chunk]
    results.append(jax.tree.map(lambda x, n=count: np.asarray(x)[:n],
                                function(*chunk)))
    if progress is not None:
      progress.update(count)
  return jax.tree.map(lambda *parts: np.concatenate(parts), *results)


def load_test_images(
    config: ml_collections.ConfigDict, num_images: int
) -> tuple[np.ndarray, np.ndarray]:
  """The first `num_images` test examples: images uint8, labels int32.

  They come through the input pipeline's evaluation iterator (its own holes
  are dropped), at the run's image size and with its label mapping.

  Raises:
    app.UsageError: the split has fewer than `num_images` examples.
  """
  source = data_source.DataSource.resolve(config.data)
  split = source.config.eval_split
  available = source.builder.info.splits[split].num_examples
  if num_images > available:
    raise app.UsageError(
        f"--num_images={num_images}, but the {split!r} split of"
        f" {source.config.name} holds {available} examples; ask for at most"
        f" {available}."
    )
  one_batch = copy.deepcopy(config)
  one_batch.eval.batch_size = num_images
  batch = next(input_pipeline.create_eval_iterator(one_batch, source))
  images = inpaint.to_uint8(batch["image"])
  return images, batch["label"].astype(np.int32)


def _load_config(flag: str, workdir: str) -> ml_collections.ConfigDict:
  try:
    return inpaint.load_config(workdir)
  except image_files.InputError as error:
    raise app.UsageError(f"--{flag}: {error}") from None


def _parse_compare_workdirs(values: Sequence[str]) -> dict[str, str]:
  """--compare_workdir=NAME=WORKDIR values -> {NAME: WORKDIR}."""
  workdirs = {}
  for value in values:
    name, equals, workdir = value.partition("=")
    if not equals or not name or not workdir:
      raise app.UsageError(
          f"--compare_workdir={value!r} is not NAME=WORKDIR; write e.g."
          " --compare_workdir=sg_noseg=/tmp/spg_noseg."
      )
    if name in workdirs:
      raise app.UsageError(f"--compare_workdir names {name!r} twice.")
    workdirs[name] = workdir
  return workdirs


@dataclasses.dataclass(frozen=True)
class _TestSet:
  """The images and holes every method fills, and the run that scores them.

  Attributes:
    inpainter: the labels-guided run under evaluation.
    images: uint8 [N, H, W, 3].
    labels: their true labels, int32 [N, H, W].
    holes: bool [N, H, W], True = hole.
    batch_size: the images the networks and metrics take at a time.
  """

  inpainter: inpaint.Inpainter
  images: np.ndarray
  labels: np.ndarray
  holes: np.ndarray
  batch_size: int

  @property
  def table(self) -> labelling.ClassTable:
    return self.inpainter.class_table

  def batched(
      self, function: Callable[..., Any], *arrays: np.ndarray,
      progress: tqdm.tqdm | None = None,
  ) -> Any:
    """`_in_batches` at this test set's batch size."""
    return _in_batches(function, self.batch_size, *arrays, progress=progress)

  def label_scores(
      self, true: np.ndarray, predicted: np.ndarray, where: np.ndarray
  ) -> tuple[float, float]:
    """mIoU and pixel accuracy of `predicted` against `true` where `where`,
    void left out; the counts summed over batches in int64."""
    size = self.batch_size
    confusion = sum(
        np.asarray(_confusion(true[start:start + size],
                              predicted[start:start + size],
                              self.table.num_classes,
                              where[start:start + size]), np.int64)
        for start in range(0, len(true), size)
    )
    return (metrics.mean_iou(confusion, self.table.void_id),
            metrics.pixel_accuracy(confusion, self.table.void_id))

  def segment_whole(self, images: np.ndarray) -> np.ndarray:
    """The segmenter's labels of whole images, no hole: label fidelity's."""
    return self.batched(self.inpainter.label_known_region, images,
                        np.zeros(images.shape[:3], bool))


def _hole_fraction(
    labels: np.ndarray, holes: np.ndarray, class_id: int
) -> float:
  """The share of each hole's pixels labelled `class_id`, averaged over the
  images with a hole."""
  hits = np.sum((labels == class_id) & holes, axis=(1, 2))
  sizes = np.sum(holes, axis=(1, 2))
  return float(np.mean(hits[sizes > 0] / sizes[sizes > 0]))


def _edit_classes(
    labels: np.ndarray, holes: np.ndarray, count: int,
    table: labelling.ClassTable,
) -> list[int]:
  """The `count` classes most frequent in the true holes, void left out."""
  frequency = np.bincount(labels[holes], minlength=table.num_classes)
  if table.void_id is not None:
    frequency[table.void_id] = 0
  ranked = np.argsort(-frequency, kind="stable")
  return [int(c) for c in ranked[:count] if frequency[c] > 0]


def _edit_response(
    test_set: _TestSet, spg_result: report.MethodResult,
    spg_segmented: np.ndarray, count: int,
) -> report.EditResponse:
  """Relabels every hole as each frequent class and renders it with SG-Net."""
  holes = test_set.holes
  classes = _edit_classes(test_set.labels, holes, count, test_set.table)
  fractions, unedited, renders = [], [], []
  for class_id in tqdm.tqdm(classes, desc="edits", unit="class"):
    edited = np.where(holes, class_id, spg_result.guide)
    output = test_set.batched(test_set.inpainter.render, test_set.images,
                              holes, edited)
    fractions.append(_hole_fraction(test_set.segment_whole(output), holes,
                                    class_id))
    unedited.append(_hole_fraction(spg_segmented, holes, class_id))
    renders.append(output[EDIT_EXAMPLE])
  return report.EditResponse(
      classes=classes, fraction_edited=fractions, fraction_unedited=unedited,
      image_index=EDIT_EXAMPLE,
      unedited_labels=spg_result.guide[EDIT_EXAMPLE],
      unedited_output=spg_result.outputs[EDIT_EXAMPLE],
      edited_outputs=np.array(renders, np.uint8).reshape(
          (len(renders),) + test_set.images.shape[1:]),
  )


def _mean_of_defined(values: np.ndarray) -> float:
  """The mean of the values that are not NaN; NaN if none is."""
  defined = values[~np.isnan(values)]
  return float(np.mean(defined)) if defined.size else float("nan")


def _score(
    test_set: _TestSet, method: methods.Method, outputs: np.ndarray,
    guide: np.ndarray | None, segmented: np.ndarray | None,
    boundary_width: int, scorer: perceptual_scores.PerceptualScorer,
) -> report.MethodResult:
  """Scores one method's fills (with LPIPS and FID where `scorer` has their
  networks), its labels if SP-Net predicted them, and their label fidelity
  if `segmented` (the segmenter's labels of the fills) is given."""
  per_image = test_set.batched(
      functools.partial(_image_scores, boundary_width=boundary_width),
      outputs, test_set.images, test_set.holes, test_set.labels,
  )
  distances = scorer.lpips(test_set.batched, outputs, test_set.images)
  if distances is not None:
    per_image["lpips"] = distances
  scores = {key: _mean_of_defined(values) for key, values in per_image.items()}
  fid = scorer.fid(test_set.batched, outputs, test_set.images)
  if fid is not None:
    scores["fid"] = fid
  if method.predicts_labels:
    scores["miou_hole"], scores["pixel_accuracy_hole"] = (
        test_set.label_scores(test_set.labels, guide, test_set.holes))
  if segmented is not None:
    reference = test_set.labels if guide is None else guide
    scores["fidelity_miou_hole"], _ = test_set.label_scores(
        reference, segmented, test_set.holes)
  return report.MethodResult(method.name, outputs, guide, per_image, scores)


def _segmenter_scores(test_set: _TestSet) -> dict[str, float]:
  """The segmenter on the known region it labels for SP-Net, and on the hole
  of the real images, the ceiling of label fidelity."""
  known = test_set.batched(test_set.inpainter.label_known_region,
                           test_set.images, test_set.holes)
  real = test_set.segment_whole(test_set.images)
  scores = {}
  scores["miou_known"], scores["pixel_accuracy_known"] = (
      test_set.label_scores(test_set.labels, known, ~test_set.holes))
  scores["miou_hole_real"], scores["pixel_accuracy_hole_real"] = (
      test_set.label_scores(test_set.labels, real, test_set.holes))
  return scores


def _spg_fill(
    test_set: _TestSet, results: Sequence[report.MethodResult],
    segmented: dict[str, np.ndarray],
) -> tuple[report.MethodResult, np.ndarray]:
  """spg's fills and the segmenter's labels of them, for the edit response;
  run here if spg was not among the methods compared."""
  for result in results:
    if result.name == "spg":
      return result, segmented["spg"]
  (spg,), _ = methods.build(["spg"], test_set.inpainter, {})
  outputs, guide = test_set.batched(spg.fill, test_set.images, test_set.holes,
                                    test_set.labels)
  return (report.MethodResult("spg", outputs, guide, {}, {}),
          test_set.segment_whole(outputs))


def compare(
    test_set: _TestSet,
    chosen: Sequence[methods.Method],
    boundary_width: int,
    edit_classes: int,
    scorer: perceptual_scores.PerceptualScorer,
) -> tuple[list[report.MethodResult], dict[str, float],
           report.EditResponse | None, dict[str, str]]:
  """Runs and scores every method, the segmenter and the edit response.

  Returns:
    The methods' results, the segmenter's scores (empty without one), the
    edit response (None if not measured) and why each measure was not.
  """
  has_segmenter = test_set.inpainter.has_segmenter
  not_measured = dict(scorer.not_measured)
  if not has_segmenter:
    reason = ("the run has no segmenter (config.schedule.seg.steps is 0) to"
              " label images with")
    not_measured.update(dict.fromkeys(
        ("segmenter", "label_fidelity", "edit_response"), reason))
  elif not edit_classes:
    not_measured["edit_response"] = "--edit_classes=0"
  results, segmented = [], {}
  total = len(test_set.images) * len(chosen)
  with tqdm.tqdm(total=total, unit="image") as progress:
    for method in chosen:
      progress.set_description(method.name)
      outputs, guide = test_set.batched(
          method.fill, test_set.images, test_set.holes, test_set.labels,
          progress=progress)
      if has_segmenter:
        segmented[method.name] = test_set.segment_whole(outputs)
      results.append(_score(test_set, method, outputs, guide,
                            segmented.get(method.name), boundary_width,
                            scorer))
  segmenter_scores = _segmenter_scores(test_set) if has_segmenter else {}
  edit = None
  if "edit_response" not in not_measured:
    edit = _edit_response(test_set, *_spg_fill(test_set, results, segmented),
                          edit_classes)
  return results, segmenter_scores, edit, not_measured


def _define_flags(
    flag_values: flags.FlagValues = flags.FLAGS,
) -> commands.FlagHolders:
  """The command's flags, defined in `flag_values` when the command runs."""
  holders = {
      "workdir": flags.DEFINE_string(
          "workdir", None, "The training run to evaluate (config.json,"
          " checkpoints/), one whose SG-Net is guided by labels.",
          flag_values=flag_values),
      "step": flags.DEFINE_integer(
          "step", None, "The saved step of --workdir to evaluate (for"
          " example the end of a phase); default the latest.",
          lower_bound=0, flag_values=flag_values),
      "out": flags.DEFINE_string(
          "out", None, "The folder for results.json, results.md,"
          " results.png, grid.png, edits.png and per_image.csv.",
          flag_values=flag_values),
      "num_images": flags.DEFINE_integer(
          "num_images", None, "Evaluate the first this many test examples.",
          lower_bound=1, flag_values=flag_values),
      "methods": flags.DEFINE_list(
          "methods", list(methods.METHODS),
          f"The methods to compare, of {', '.join(methods.METHODS)}.",
          flag_values=flag_values),
      "compare_workdir": flags.DEFINE_multi_string(
          "compare_workdir", [], "NAME=WORKDIR: the run whose networks"
          " method NAME runs; for sg_noseg, one trained with"
          " --config.model.guidance=none.", flag_values=flag_values),
      "holes_dir": flags.DEFINE_string(
          "holes_dir", None, "The fixed hole set, drawn there if absent;"
          " default OUT/holes. Point the evaluations of several runs at one"
          " folder to share it.", flag_values=flag_values),
      "hole_seed": flags.DEFINE_integer(
          "hole_seed", HOLE_SEED, "The seed the hole set is drawn from.",
          flag_values=flag_values),
      "boundary_width": flags.DEFINE_integer(
          "boundary_width", BOUNDARY_WIDTH, "Score L1 on the hole pixels"
          " within this many pixels of a boundary between true classes.",
          lower_bound=0, flag_values=flag_values),
      "edit_classes": flags.DEFINE_integer(
          "edit_classes", EDIT_CLASSES, "Measure the edit response for this"
          " many of the classes most frequent in the true holes (0: none).",
          lower_bound=0, flag_values=flag_values),
      "data_dir": flags.DEFINE_string(
          "data_dir", None, "The TFDS data_dir of the run's dataset, if not"
          " the one its config.json names.", flag_values=flag_values),
  }
  for name in ("workdir", "out", "num_images"):
    flags.mark_flag_as_required(name, flag_values=flag_values)
  return holders


def _settings(
    values: dict[str, Any], inpainter: inpaint.Inpainter,
    holes_dir: epath.Path, chosen: Sequence[methods.Method],
) -> dict[str, Any]:
  """What was compared and how, for results.json and results.md."""
  config = inpainter.config
  return {
      "workdir": values["workdir"],
      "step": inpainter.step,
      "known_labels": inpainter.networks.known_labels,
      "data": config.data.name,
      "split": config.data.eval_split,
      "image_size": config.data.image_size,
      "num_images": values["num_images"],
      "holes_dir": str(holes_dir),
      "hole_seed": values["hole_seed"],
      "patchmatch_seed": baselines.PATCHMATCH_SEED,
      "boundary_width": values["boundary_width"],
      "edit_classes": values["edit_classes"],
      "methods": [method.name for method in chosen],
  }


def _check_runs(
    values: dict[str, Any]
) -> tuple[ml_collections.ConfigDict, dict[str, str]]:
  """The run's config and the --compare_workdir runs, checked before any
  data or checkpoint is read.

  Raises:
    app.UsageError: a workdir is not a run, the run is not guided by labels,
      or a compare run does not suit its method.
  """
  config = _load_config("workdir", values["workdir"])
  if config.model.get("guidance", "labels") != "labels":
    raise app.UsageError(
        f"--workdir {values['workdir']} was trained without labels"
        " (config.model.guidance='none'); give a labels-guided run as"
        " --workdir and this one as --compare_workdir=sg_noseg=WORKDIR."
    )
  compare_workdirs = _parse_compare_workdirs(values["compare_workdir"])
  for name, workdir in compare_workdirs.items():
    try:
      methods.check_compare_run(name, _load_config("compare_workdir",
                                                   workdir))
    except ValueError as error:
      raise app.UsageError(
          f"--compare_workdir={name}={workdir}: {error}") from None
  if values["data_dir"]:
    config.data.data_dir = values["data_dir"]
  return config, compare_workdirs


def _load_holes(
    config: ml_collections.ConfigDict, holes_dir: epath.Path,
    values: dict[str, Any],
) -> np.ndarray:
  """The fixed hole set, bool [N, H, W]; drawn first if `holes_dir` is new.

  Raises:
    app.UsageError: `holes_dir` holds holes drawn with other settings, or
      a broken hole set.
  """
  size = config.data.image_size
  try:
    holes = hole_set.get_or_create(
        holes_dir, config.masks, size, size, values["num_images"],
        values["hole_seed"],
    )
  except (ValueError, FileNotFoundError) as error:
    raise app.UsageError(f"--holes_dir: {error}") from None
  return holes.masks[..., 0] > 0


def main(argv: Sequence[str], holders: commands.FlagHolders) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  values = {name: holder.value for name, holder in holders.items()}
  try:
    names = methods.check_names(values["methods"])
    report.check_plotting()
  except ValueError as error:
    raise app.UsageError(f"--methods: {error}") from None
  except ImportError as error:
    sys.exit(str(error))
  config, compare_workdirs = _check_runs(values)
  images, labels = load_test_images(config, values["num_images"])
  out = epath.Path(values["out"])
  holes_dir = epath.Path(values["holes_dir"] or out / "holes")
  holes = _load_holes(config, holes_dir, values)
  try:
    inpainter = inpaint.Inpainter.from_workdir(values["workdir"],
                                               values["step"])
  except ValueError as error:
    raise app.UsageError(str(error)) from None
  compare_runs = {
      name: inpaint.Inpainter.from_workdir(workdir)
      for name, workdir in compare_workdirs.items() if name in names
  }
  chosen, left_out = methods.build(names, inpainter, compare_runs)
  test_set = _TestSet(inpainter, images, labels, holes,
                      min(len(images), config.eval.batch_size))
  scorer = perceptual_scores.PerceptualScorer.from_config(config.eval)
  results, segmenter_scores, edit, not_measured = compare(
      test_set, chosen, values["boundary_width"], values["edit_classes"],
      scorer)
  settings = _settings(values, inpainter, holes_dir, chosen)
  settings["compare_workdirs"] = {
      name: {"workdir": compare_workdirs[name], "step": run.step}
      for name, run in compare_runs.items()
  }
  comparison = report.Comparison(
      settings=settings, images=images, labels=labels, holes=holes,
      results=results, left_out=left_out, not_measured=not_measured,
      segmenter=segmenter_scores, edit=edit,
      class_table=inpainter.class_table,
  )
  report.write(out, comparison)
  print(report.results_markdown(comparison))
  print(f"Wrote {out}.")


def run() -> None:
  """The command's entry point."""
  commands.run(_define_flags, main)


if __name__ == "__main__":
  run()
