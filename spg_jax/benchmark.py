r"""Measures throughput; `--mode=input` times the host input pipeline alone.

  python -m spg_jax.benchmark --config=configs/cityscapes.py --mode=input \
      --config.data.manual_dir=DIR --config.data.cache=False --json=out.json

Reads the training stream of the config (decode, resize, label map, holes,
batching: everything but the device), discards `--warmup_batches` batches
and times the next `--batches`, and reports images/s and images/s per CPU
core of this process. With `--config.data.cache=False` every image is decoded
from its file, the rate of the first epoch; with caching on, later epochs
only crop, add holes and batch. BENCHMARKS.md records the figures.
"""

from collections.abc import Sequence
import json
import os
import platform
import time

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags

from spg_jax import atomic_files
from spg_jax import input_pipeline
from spg_jax.datasets import preparation

MODES = ("input",)

def measure_input(
    config: ml_collections.ConfigDict, warmup_batches: int, batches: int
) -> dict[str, float | int | str]:
  """Times the host pipeline's training batches; returns the figures."""
  input_pipeline.check_data_config(config.data)
  preparation.prepare(config.data)
  iterator = input_pipeline.create_train_iterator(config)
  for _ in range(warmup_batches):
    next(iterator)
  start = time.perf_counter()
  images = 0
  for _ in range(batches):
    images += len(next(iterator)["image"])
  seconds = time.perf_counter() - start
  cores = len(os.sched_getaffinity(0))
  return {
      "mode": "input",
      "dataset": config.data.name,
      "image_size": config.data.image_size,
      "resize": config.data.resize,
      "cache": bool(config.data.cache),
      "batch_size": config.batch_size,
      "images": images,
      "seconds": seconds,
      "images_per_sec": images / seconds,
      "cpu_cores": cores,
      "images_per_sec_per_core": images / seconds / cores,
      "host": platform.node(),
      "processor": platform.processor() or platform.machine(),
  }


def _define_flags() -> dict[str, flags.FlagHolder]:
  """The command line's flags, defined only when run as a program, so that
  importing this module next to other programs' flags never clashes."""
  holders = {
      "config": config_flags.DEFINE_config_file(
          "config", None, "Training configuration file.", lock_config=True
      ),
      "mode": flags.DEFINE_enum("mode", "input", MODES, "What to measure."),
      "json": flags.DEFINE_string("json", None, "Also write results here."),
      "warmup_batches": flags.DEFINE_integer(
          "warmup_batches", 4, "Batches read before timing starts."
      ),
      "batches": flags.DEFINE_integer("batches", 20, "Batches timed."),
  }
  flags.mark_flags_as_required(["config"])
  return holders


def main(argv: Sequence[str], holders: dict[str, flags.FlagHolder]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    results = measure_input(
        holders["config"].value,
        holders["warmup_batches"].value,
        holders["batches"].value,
    )
  except preparation.DataError as error:
    raise SystemExit(f"Data error: {error}") from None
  text = json.dumps(results, indent=2)
  print(text)
  if holders["json"].value:
    atomic_files.write_text(holders["json"].value, text + "\n")


if __name__ == "__main__":
  _holders = _define_flags()
  app.run(lambda argv: main(argv, _holders))
