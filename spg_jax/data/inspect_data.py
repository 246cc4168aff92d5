r"""Shows exactly what the input pipeline yields, before a long run.

  python -m spg_jax.data.inspect_data --config=configs/cityscapes.py --num=8 \
      --out=/tmp/inspect_cityscapes

Builds the dataset if needed (with the same clear errors as training), reads
`--num` examples of the training stream (or the evaluation split with
`--split=eval`) and writes to `--out`:

  {split}_examples.png   one row per example: image, labels in the class
                         colours, the hole, and the corrupted input the
                         networks see;
  legend.png             the class colours with their ids and names;
  class_frequencies.json the share of pixels of each class, overall and
                         inside the holes.

It prints the same frequencies as a table, so that an empty class, a label
map gone wrong (everything 'void') or holes of the wrong size show at once.
"""

from collections.abc import Iterator, Sequence
import json

from absl import app
from absl import flags
from etils import epath
import ml_collections
from ml_collections import config_flags
import numpy as np
from PIL import Image
from PIL import ImageDraw

from spg_jax.data import data_source
from spg_jax.data import input_pipeline
from spg_jax.data import labelling
from spg_jax.data import preparation
from spg_jax.runtime import atomic_files
from spg_jax.runtime import commands
from spg_jax.training import samples

SPLITS = ("train", "eval")
COLUMNS = ("image", "labels", "hole", "input")

_LEGEND_ROW_HEIGHT = 18


def take_examples(
    config: ml_collections.ConfigDict,
    source: data_source.DataSource,
    split: str,
    num: int,
) -> dict[str, np.ndarray]:
  """Returns the first `num` examples the pipeline yields for `split`.

  Evaluation batches are padded; the padding rows are dropped.
  """
  if split == "train":
    batches: Iterator[dict[str, np.ndarray]] = (
        input_pipeline.create_train_iterator(config, source)
    )
  else:
    batches = input_pipeline.create_eval_iterator(config, source)
  taken: dict[str, list[np.ndarray]] = {}
  count = 0
  for batch in batches:
    real = batch.pop("weight", np.ones(len(batch["image"]))) > 0
    for key, value in batch.items():
      taken.setdefault(key, []).append(value[real])
    count += int(real.sum())
    if count >= num:
      break
  return {key: np.concatenate(value)[:num] for key, value in taken.items()}


def example_grid(
    examples: dict[str, np.ndarray], class_table: labelling.ClassTable
) -> np.ndarray:
  """One row per example with the `COLUMNS`, as uint8 [N*H, 4*W, 3]."""
  hole = examples["mask"] > 0
  return samples.grid_from_columns([
      samples.to_uint8(examples["image"]),
      class_table.colorize(examples["label"]),
      samples.hole_image(hole),
      samples.to_uint8(np.where(hole, 1.0, examples["image"])),
  ])


def class_frequencies(
    examples: dict[str, np.ndarray], class_table: labelling.ClassTable
) -> dict[str, dict[str, float]]:
  """Share of pixels of each class, over all pixels and inside the holes."""
  labels = examples["label"]
  hole = examples["mask"][..., 0] > 0
  overall = np.bincount(labels.ravel(), minlength=class_table.num_classes)
  in_hole = np.bincount(labels[hole], minlength=class_table.num_classes)
  return {
      name: {
          "overall": float(overall[index] / max(overall.sum(), 1)),
          "hole": float(in_hole[index] / max(in_hole.sum(), 1)),
      }
      for index, name in enumerate(class_table.names)
  }


def format_frequencies(
    frequencies: dict[str, dict[str, float]], hole_fraction: float
) -> str:
  """The frequencies as an aligned text table, one class per line."""
  width = max(len(name) for name in frequencies)
  lines = [f"{'id':>3}  {'class':<{width}}  {'pixels':>7}  {'in holes':>8}"]
  for index, (name, share) in enumerate(frequencies.items()):
    lines.append(
        f"{index:>3}  {name:<{width}}  {share['overall']:>7.2%}"
        f"  {share['hole']:>8.2%}"
    )
  lines.append(f"Holes cover {hole_fraction:.2%} of the pixels.")
  return "\n".join(lines)


def legend(class_table: labelling.ClassTable) -> np.ndarray:
  """A uint8 image listing each class's colour, id and name."""
  height = _LEGEND_ROW_HEIGHT * class_table.num_classes
  image = Image.new("RGB", (260, height), "white")
  draw = ImageDraw.Draw(image)
  for index, (name, color) in enumerate(
      zip(class_table.names, class_table.colors)
  ):
    top = index * _LEGEND_ROW_HEIGHT
    draw.rectangle([2, top + 2, 30, top + _LEGEND_ROW_HEIGHT - 2], fill=color,
                   outline="black")
    draw.text((38, top + 3), f"{index:>3}  {name}", fill="black")
  return np.asarray(image)


def inspect(
    config: ml_collections.ConfigDict, split: str, num: int, out: str
) -> dict[str, dict[str, float]]:
  """Writes the example grid, legend and frequencies; returns frequencies."""
  source = data_source.DataSource.resolve(config.data)
  class_table = source.class_table
  examples = take_examples(config, source, split, num)
  out_dir = epath.Path(out)
  atomic_files.write_png(out_dir / f"{split}_examples.png",
                         example_grid(examples, class_table))
  atomic_files.write_png(out_dir / "legend.png", legend(class_table))
  frequencies = class_frequencies(examples, class_table)
  atomic_files.write_text(
      out_dir / "class_frequencies.json", json.dumps(frequencies, indent=2)
  )
  print(f"{len(examples['image'])} {split} examples of {config.data.name},"
        f" written to {out_dir}:")
  print(format_frequencies(frequencies, float(examples["mask"].mean())))
  return frequencies


def _define_flags() -> dict[str, flags.FlagHolder]:
  """The command line's flags, defined only when run as a program, so that
  importing this module next to other programs' flags never clashes."""
  holders = {
      "config": config_flags.DEFINE_config_file(
          "config", None, "Training configuration file.", lock_config=True
      ),
      "num": flags.DEFINE_integer("num", 8, "Number of examples to show."),
      "out": flags.DEFINE_string("out", None, "Directory for the outputs."),
      "split": flags.DEFINE_enum(
          "split", "train", SPLITS, "The training stream or the eval split."
      ),
  }
  flags.mark_flags_as_required(["config", "out"])
  return holders


def main(argv: Sequence[str], holders: dict[str, flags.FlagHolder]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    inspect(holders["config"].value, holders["split"].value,
            holders["num"].value, holders["out"].value)
  except preparation.DataError as error:
    raise SystemExit(f"Data error: {error}") from None


def run() -> None:
  """The command's entry point."""
  commands.run(_define_flags, main)


if __name__ == "__main__":
  run()
