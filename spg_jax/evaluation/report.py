"""What a comparison of inpainting methods found, and the files that show it.

`compare` fills the holes with each method and scores the fills into a
`Comparison`; `write` puts it into a folder:

  results.json   settings, every method's metrics, the methods left out and
                 why, the segmenter's scores, the edit response
  results.md     the same as a table: methods as rows, metrics as columns,
                 the best value of each column in bold
  results.png    bar charts: hole L1, hole PSNR, boundary band L1 and label
                 fidelity per method
  grid.png       examples: the input with its hole, then each method's fill,
                 then the real image; the hole outlined
  edits.png      one image re-rendered with its hole relabelled as each
                 edited class, beside SPG-Net's own fill
  per_image.csv  every image's metrics under every method

Each file is written whole (to a temporary name, then renamed), so a reader
never sees half of one.
"""

from collections.abc import Sequence
import csv
import dataclasses
import io
import json
import math
from typing import Any

from etils import epath
import numpy as np

from spg_jax.data import labelling
from spg_jax.evaluation import perceptual_scores
from spg_jax.runtime import atomic_files

# Every metric a method can have: key -> (title, whether higher is better).
# Images are scored in [0, 1]; '_hole' over the hole only.
METRICS = {
    "l1": ("L1", False),
    "l2": ("L2", False),
    "psnr": ("PSNR", True),
    "ssim": ("SSIM", True),
    "l1_hole": ("L1 hole", False),
    "l2_hole": ("L2 hole", False),
    "psnr_hole": ("PSNR hole", True),
    "ssim_hole": ("SSIM hole", True),
    # L1 over the hole pixels near a boundary between true classes.
    "l1_boundary": ("L1 boundary", False),
    # SP-Net's labels inside the hole against the true labels.
    "miou_hole": ("mIoU hole", True),
    "pixel_accuracy_hole": ("pixel acc. hole", True),
    # The segmenter's labels of the fill against those that guided it.
    "fidelity_miou_hole": ("label fidelity", True),
    # LPIPS v0.1 (AlexNet) of the whole image; FID of the whole set.
    "lpips": ("LPIPS", False),
    "fid": ("FID", False),
}
# The metrics of results.png, in its order.
CHARTS = ("l1_hole", "psnr_hole", "l1_boundary", "fidelity_miou_hole")
# The measure whose `Comparison.not_measured` reason a chart shows if empty.
_MEASURE_OF_CHART = {"fidelity_miou_hole": "label_fidelity"}
# The examples grid.png shows, at most.
GRID_ROWS = 4
# The hole's outline in the figures.
OUTLINE_COLOUR = "red"
# Decimal places of results.md: PSNR in dB, the rest in [0, 1].
_DECIMALS = {"psnr": 2, "psnr_hole": 2}
_DEFAULT_DECIMALS = 4
# Inches per image in grid.png and edits.png.
_CELL_INCHES = 1.6


@dataclasses.dataclass(frozen=True)
class MethodResult:
  """One method's fills and scores.

  Attributes:
    name: the method's name.
    outputs: the filled images, uint8 [N, H, W, 3].
    guide: the label map [N, H, W] that guided the fill, None if unguided.
    per_image: per-image metric -> float [N], NaN where an image has none
      (a boundary band with no pixel).
    metrics: metric -> its value over all images: the mean of the per-image
      values, or a score of the whole set's counts (mIoU, accuracy).
  """

  name: str
  outputs: np.ndarray
  guide: np.ndarray | None
  per_image: dict[str, np.ndarray]
  metrics: dict[str, float]


@dataclasses.dataclass(frozen=True)
class EditResponse:
  """How SG-Net follows edited labels, and one image's edits for edits.png.

  Attributes:
    classes: the class ids the hole was relabelled as.
    fraction_edited: per class, the share of hole pixels that the segmenter
      labels as that class once the hole is relabelled as it and rendered,
      averaged over the images.
    fraction_unedited: per class, the same share in `spg`'s own fill.
    image_index: the image that edits.png shows.
    unedited_labels: its label map as SP-Net completed it, [H, W].
    unedited_output: `spg`'s fill of it, [H, W, 3].
    edited_outputs: its render per edited class, [len(classes), H, W, 3].
  """

  classes: list[int]
  fraction_edited: list[float]
  fraction_unedited: list[float]
  image_index: int
  unedited_labels: np.ndarray
  unedited_output: np.ndarray
  edited_outputs: np.ndarray


@dataclasses.dataclass(frozen=True)
class Comparison:
  """Everything `write` reports.

  Attributes:
    settings: what was compared and how (workdirs, steps, data, holes,
      seeds), as JSON values.
    images: the real images, uint8 [N, H, W, 3].
    labels: their true labels, int [N, H, W].
    holes: bool [N, H, W], True = hole.
    results: the methods that ran, in order.
    left_out: {method: why it did not run}.
    not_measured: {measure ('segmenter', 'label_fidelity',
      'edit_response', 'lpips', 'fid'): why it was not measured}.
    segmenter: the run's segmenter's scores, empty if it has none.
    edit: the edit response, None if not measured.
    class_table: the classes of the labels.
  """

  settings: dict[str, Any]
  images: np.ndarray
  labels: np.ndarray
  holes: np.ndarray
  results: list[MethodResult]
  left_out: dict[str, str]
  not_measured: dict[str, str]
  segmenter: dict[str, float]
  edit: EditResponse | None
  class_table: labelling.ClassTable


def check_plotting() -> None:
  """Raises ImportError, saying what to install, if matplotlib is missing."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as error:
    raise ImportError(
        f"The comparison's charts need matplotlib ({error}); pip install"
        " -e '.[evaluate]'."
    ) from None


def _pyplot():
  """matplotlib.pyplot on the Agg backend, which needs no display."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  return plt


def _json_number(value: float) -> float | None:
  """NaN, which JSON lacks, as null."""
  return None if math.isnan(value) else float(value)


def _edit_json(comparison: Comparison) -> list[dict[str, Any]]:
  """The edit response per class, the classes most frequent first."""
  edit = comparison.edit
  return [
      {
          "class": comparison.class_table.names[class_id],
          "class_id": class_id,
          "fraction_labelled_as_edited": edited,
          "fraction_labelled_in_spg_fill": unedited,
      }
      for class_id, edited, unedited in zip(
          edit.classes, edit.fraction_edited, edit.fraction_unedited
      )
  ]


def results_json(comparison: Comparison) -> str:
  """The comparison's numbers and settings as JSON text."""
  results = {
      "settings": comparison.settings,
      "methods": {
          result.name: {
              key: _json_number(value) for key, value in result.metrics.items()
          }
          for result in comparison.results
      },
      "left_out": comparison.left_out,
      "not_measured": comparison.not_measured,
      "segmenter": comparison.segmenter,
      "edit_response": _edit_json(comparison) if comparison.edit else None,
  }
  return json.dumps(results, indent=2, sort_keys=True)


def _format(key: str, value: float | None) -> str:
  if value is None or math.isnan(value):
    return "–"
  return f"{value:.{_DECIMALS.get(key, _DEFAULT_DECIMALS)}f}"


def _table(comparison: Comparison) -> list[str]:
  """The methods-by-metrics table, the best of each column in bold."""
  keys = [
      key for key in METRICS
      if any(key in result.metrics for result in comparison.results)
  ]
  header = ["method"] + [METRICS[key][0] for key in keys]
  lines = ["| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  best = {}
  for key in keys:
    values = [
        round(result.metrics[key], _DECIMALS.get(key, _DEFAULT_DECIMALS))
        for result in comparison.results
        if not math.isnan(result.metrics.get(key, math.nan))
    ]
    if values:
      best[key] = max(values) if METRICS[key][1] else min(values)
  for result in comparison.results:
    cells = [result.name]
    for key in keys:
      value = result.metrics.get(key)
      text = _format(key, value)
      if text != "–" and round(
          value, _DECIMALS.get(key, _DEFAULT_DECIMALS)
      ) == best.get(key):
        text = f"**{text}**"
      cells.append(text)
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def results_markdown(comparison: Comparison) -> str:
  """results.md: the table, what its columns mean, the settings, the gaps."""
  settings = comparison.settings
  lines = [
      "# Inpainting methods compared",
      "",
      f"{settings['num_images']} images of {settings['data']}'s"
      f" {settings['split']} split at {settings['image_size']} x"
      f" {settings['image_size']} pixels, every method filling the same"
      f" holes ({settings['holes_dir']}, seed {settings['hole_seed']}).",
      "",
      *_table(comparison),
      "",
      "Images are scored in [0, 1]; lower is better for L1 and L2, higher"
      " for the rest. 'hole': over the hole only. 'L1 boundary': over the"
      " hole pixels within"
      f" {settings['boundary_width']} pixels of a boundary between true"
      " classes. 'mIoU hole' and 'pixel acc. hole': SP-Net's labels inside"
      " the hole against the true ones (void left out). 'label fidelity':"
      " the segmenter's mIoU inside the hole of the fill, labelled as a"
      " whole image, against the labels that guided the fill (the true"
      " labels for unguided methods).",
  ]
  if any("lpips" in result.metrics for result in comparison.results):
    lines[-1] += (" 'LPIPS': v0.1 on AlexNet between each fill and its real"
                  " image, lower is closer.")
  if any("fid" in result.metrics for result in comparison.results):
    lines[-1] += " " + perceptual_scores.fid_caveat(settings["num_images"])
  segmenter = comparison.segmenter
  if segmenter:
    lines += [
        "",
        "## The run's segmenter",
        "",
        f"- known region of the corrupted images: mIoU"
        f" {segmenter['miou_known']:.4f}, pixel accuracy"
        f" {segmenter['pixel_accuracy_known']:.4f}",
        f"- the hole of the real images (label fidelity's ceiling): mIoU"
        f" {segmenter['miou_hole_real']:.4f}, pixel accuracy"
        f" {segmenter['pixel_accuracy_hole_real']:.4f}",
    ]
  if comparison.edit:
    lines += [
        "",
        "## Edit response",
        "",
        "The hole relabelled as one class and rendered by SG-Net: the share"
        " of hole pixels the segmenter then labels as that class, beside the"
        " share in spg's own fill.",
        "",
        "| class | after the edit | spg's fill |",
        "|---|---|---|",
    ]
    for entry in _edit_json(comparison):
      lines.append(
          f"| {entry['class']} | {entry['fraction_labelled_as_edited']:.4f} |"
          f" {entry['fraction_labelled_in_spg_fill']:.4f} |"
      )
  lines += ["", "## Settings", ""]
  lines += [
      f"- {key}: {json.dumps(value)}" for key, value in settings.items()
  ]
  for title, reasons in (("Methods left out", comparison.left_out),
                         ("Not measured", comparison.not_measured)):
    if reasons:
      lines += ["", f"## {title}", ""]
      lines += [f"- {name}: {reason}" for name, reason in reasons.items()]
  return "\n".join(lines) + "\n"


def per_image_csv(comparison: Comparison) -> str:
  """One row per image and method: its per-image metrics (empty if none)."""
  keys = [key for key in METRICS
          if any(key in result.per_image for result in comparison.results)]
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  writer.writerow(["image", "method"] + keys)
  for index in range(len(comparison.images)):
    for result in comparison.results:
      values = [result.per_image[key][index] if key in result.per_image
                else math.nan for key in keys]
      writer.writerow([index, result.name] + [
          "" if math.isnan(value) else f"{value:.6g}" for value in values
      ])
  return buffer.getvalue()


def _figure_png(figure) -> bytes:
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  _pyplot().close(figure)
  return buffer.getvalue()


def results_png(comparison: Comparison) -> bytes:
  """Bar charts of `CHARTS` per method; label fidelity with its ceiling."""
  plt = _pyplot()
  figure, axes = plt.subplots(1, len(CHARTS),
                              figsize=(4 * len(CHARTS), 3.5))
  for axis, key in zip(axes, CHARTS):
    title, higher_better = METRICS[key]
    scored = [
        (result.name, result.metrics[key]) for result in comparison.results
        if not math.isnan(result.metrics.get(key, math.nan))
    ]
    axis.set_title(f"{title} ({'higher' if higher_better else 'lower'}"
                   " is better)", fontsize=9)
    if not scored:
      axis.text(0.5, 0.5, comparison.not_measured.get(
          _MEASURE_OF_CHART.get(key, ""), "not measured"),
                ha="center", va="center", wrap=True, fontsize=7,
                transform=axis.transAxes)
      axis.set_axis_off()
      continue
    names, values = zip(*scored)
    axis.bar(range(len(values)), values, color="tab:blue")
    axis.set_xticks(range(len(values)), names, rotation=45, ha="right",
                    fontsize=8)
    if key == "fidelity_miou_hole" and comparison.segmenter:
      axis.axhline(comparison.segmenter["miou_hole_real"], color="tab:red",
                   linestyle="--", label="real images")
      axis.legend(fontsize=7)
  return _figure_png(figure)


def _show(axis, image: np.ndarray, hole: np.ndarray | None, title: str):
  axis.imshow(image, interpolation="nearest")
  if hole is not None and hole.any():
    axis.contour(hole.astype(np.float32), levels=[0.5],
                 colors=OUTLINE_COLOUR, linewidths=0.8)
  axis.set_title(title, fontsize=8)
  axis.set_axis_off()


def _image_grid(rows: Sequence[Sequence[tuple[np.ndarray, np.ndarray | None,
                                              str]]]) -> bytes:
  """A figure of image cells (image, hole to outline or None, title)."""
  plt = _pyplot()
  height, width = len(rows), max(len(row) for row in rows)
  figure, axes = plt.subplots(
      height, width, squeeze=False,
      figsize=(_CELL_INCHES * width, _CELL_INCHES * height),
  )
  for axis_row, row in zip(axes, rows):
    for axis in axis_row[len(row):]:
      axis.set_axis_off()
    for axis, cell in zip(axis_row, row):
      _show(axis, *cell)
  return _figure_png(figure)


def _with_hole(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
  """The input as a method gets it: the hole white, as in the sample grids."""
  return np.where(hole[..., None], np.uint8(255), image)


def grid_png(comparison: Comparison) -> bytes:
  """Up to GRID_ROWS examples: input, each method's fill, the real image."""
  rows = []
  for index in range(min(GRID_ROWS, len(comparison.images))):
    image, hole = comparison.images[index], comparison.holes[index]
    rows.append(
        [(_with_hole(image, hole), hole, f"input {index}")]
        + [(result.outputs[index], hole, result.name)
           for result in comparison.results]
        + [(image, hole, "real")]
    )
  return _image_grid(rows)


def edits_png(comparison: Comparison) -> bytes:
  """One image: its input and spg's fill and labels, then each edit's."""
  edit, table = comparison.edit, comparison.class_table
  index = edit.image_index
  image, hole = comparison.images[index], comparison.holes[index]
  names = [table.names[class_id] for class_id in edit.classes]
  edited_labels = [np.where(hole, class_id, edit.unedited_labels)
                   for class_id in edit.classes]
  return _image_grid([
      [(_with_hole(image, hole), hole, f"input {index}"),
       (edit.unedited_output, hole, "spg")]
      + [(output, hole, f"hole as {name}")
         for output, name in zip(edit.edited_outputs, names)],
      [(image, hole, "real"),
       (table.colorize(edit.unedited_labels), hole, "spg's labels")]
      + [(table.colorize(labels), hole, f"labels: {name}")
         for labels, name in zip(edited_labels, names)],
  ])


def write(directory: epath.PathLike, comparison: Comparison) -> None:
  """Writes every file of the module docstring into `directory`.

  edits.png only when the edit response was measured.
  """
  directory = epath.Path(directory)
  atomic_files.write_text(directory / "results.json",
                          results_json(comparison))
  atomic_files.write_text(directory / "results.md",
                          results_markdown(comparison))
  atomic_files.write_text(directory / "per_image.csv",
                          per_image_csv(comparison))
  atomic_files.write_bytes(directory / "results.png", results_png(comparison))
  atomic_files.write_bytes(directory / "grid.png", grid_png(comparison))
  if comparison.edit:
    atomic_files.write_bytes(directory / "edits.png", edits_png(comparison))
