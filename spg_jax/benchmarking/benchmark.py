r"""Measures SPG-Net's speed: training steps, inference, or the input pipeline.

  python -m spg_jax.benchmarking.benchmark --config=configs/default.py --mode=train \
      --json=train.json
  python -m spg_jax.benchmarking.benchmark --config=configs/default.py --mode=infer
  python -m spg_jax.benchmarking.benchmark --config=configs/cityscapes.py --mode=input \
      --config.data.manual_dir=DIR --config.data.cache=False

`train` times one phase's data-parallel step (`--phase`, default 'joint',
which updates all four networks) on a fixed device-resident batch of the
config's global size, over all devices; `infer` times SP-Net then SG-Net
(`Networks.complete`) on one device at batch 1 for each `--infer_sizes`,
then the throughput of each `--infer_batches` at the first size; `input`
times the host's tf.data pipeline alone (decode, resize, labels, holes,
batches), per CPU core.

Compilation is timed apart from the steps. FLOPs are the convolutions' and
matmuls' of the traced program (`spg_jax.benchmarking.flop_count`, the convention of MFU
and of the PyTorch twin's counter; a rematerialised step, or one with
space-to-depth convolutions, counts as the plain one, since neither's
extra work is the model's), with XLA's cost analysis
of the compiled program beside them as `xla_flops_per_step`; MFU divides the
achieved FLOP/s by the peak of the devices in the dtype the networks compute
in (`spg_jax.benchmarking.device_peaks`; a CPU's is measured in the same run). The train
and infer modes import no TensorFlow. Every mode prints JSON and writes it
to `--json`, with the command line's `arguments` (less `--json`); `train`
with `--profile_dir` also traces a few more steps there and names them
under `profile` (`benchmarks/trace_summary.py` reads the trace).
BENCHMARKS.md records the results.
"""

from collections.abc import Sequence
import json
import os
import platform
import sys
import time
from typing import Any

from absl import app
from absl import flags
import flax
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np

from spg_jax.benchmarking import device_peaks
from spg_jax.benchmarking import profiling
from spg_jax.models import layers
from spg_jax.models import spg
from spg_jax.runtime import atomic_files
from spg_jax.runtime import commands
from spg_jax.runtime import host_cpu
from spg_jax.runtime import sharding
from spg_jax.training import config_checks
from spg_jax.training import perceptual
from spg_jax.training import schedules
from spg_jax.training import steps

MODES = ("train", "infer", "input")
# Keys every result of the train and infer modes has, in this order; the
# PyTorch twin (benchmarks/torch_reference.py) writes the same.
RESULT_KEYS = (
    "images_per_sec",
    "step_time_ms",
    "compile_s",
    "tflops_per_sec",
    "mfu",
    "peak_memory_bytes",
    "device",
    "dtype",
)

Results = dict[str, Any]


def random_batch(
    batch_size: int, height: int, width: int, num_classes: int, seed: int
) -> dict[str, np.ndarray]:
  """A batch in the training layout: random pixels and labels, a centred
  hole of half the sides (the values do not change the work done)."""
  rng = np.random.default_rng(seed)
  mask = np.zeros([batch_size, height, width, 1], np.float32)
  mask[:, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 1.0
  return {
      "image": rng.uniform(-1, 1, [batch_size, height, width, 3]).astype(
          np.float32
      ),
      "label": rng.integers(0, num_classes, [batch_size, height, width]).astype(
          np.int32
      ),
      "mask": mask,
  }


def _environment(
    devices: Sequence[jax.Device], config: ml_collections.ConfigDict
) -> Results:
  return {
      "device": devices[0].device_kind,
      "platform": devices[0].platform,
      "device_count": len(devices),
      "dtype": layers.compute_dtype(config.dtype).name,
      "remat": config.model.remat,
      "output_conv_forms": {
          name: config.model[f"{name}_generator"].output_conv_form
          for name in ("sp", "sg")
      },
      "upsampling_forms": {
          name: config.model[f"{name}_generator"].upsampling_form
          for name in ("sp", "sg")
      },
      "host": platform.node(),
      "cpu_cores": len(os.sched_getaffinity(0)),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "versions": {
          "jax": jax.__version__,
          "jaxlib": jax.lib.__version__,
          "flax": flax.__version__,
      },
  }


def _rates(
    compiled: profiling.Compiled,
    seconds: float,
    images: int,
    num_devices: int,
    peak: tuple[float, str],
) -> Results:
  """Throughput, FLOP/s and MFU of `compiled` taking `seconds` per call."""
  return {
      **device_peaks.step_figures(
          compiled.model_flops,
          seconds,
          images,
          peak,
          compiled.compile_seconds,
      ),
      "flops_source": (
          "convolutions and matmuls of the jaxpr (spg_jax.benchmarking.flop_count)"
      ),
      "xla_flops_per_step": compiled.xla_flops_per_device * num_devices,
  }


def plain_config(
    config: ml_collections.ConfigDict,
) -> ml_collections.ConfigDict:
  """`config` without rematerialisation and with direct convolutions.

  Its FLOPs are the model's, which MFU counts: a rematerialised step
  recomputes some of its forward pass, and a space-to-depth convolution
  does more multiply-adds than the one it computes.
  """
  plain = config.copy_and_resolve_references()
  plain.model.remat = "none"
  for generator in (plain.model.sp_generator, plain.model.sg_generator):
    generator.output_conv_form = "direct"
  return plain


def plain_step(
    config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, phase: str
) -> Any:
  """`phase`'s compiled function of (state, batch, frozen) under
  `plain_config(config)`: the model's FLOPs."""
  plain = plain_config(config)
  frozen, _ = perceptual.params_for_timing(plain.loss)
  return steps.make_train_steps(
      plain, spg.Networks.from_config(plain), mesh, frozen
  )[phase].jitted


def measure_train(
    config: ml_collections.ConfigDict,
    phase: str,
    warmup_steps: int,
    windows: int,
    window_steps: int,
    profile_dir: str | None = None,
    profile_steps: int = 3,
) -> Results:
  """Times `phase`'s train step on every device; returns the figures.

  With `profile_dir`, `profile_steps` more steps then run under the
  profiler, their trace written there (`profiling.trace_calls`), beside
  the compiled step's optimised HLO (`optimized_hlo.txt`), whose
  instruction names are the trace's operation names: what a fusion that
  takes the time computes.
  """
  if phase not in schedules.PHASES:
    raise ValueError(
        f"Unknown phase {phase!r}; choose one of {schedules.PHASES}."
    )
  mesh = sharding.make_mesh()
  networks = spg.Networks.from_config(config)
  size = config.data.image_size
  state = sharding.replicate(
      steps.create_train_state(config, networks, jax.random.key(config.seed)),
      mesh,
  )
  batch = sharding.shard_batch(
      random_batch(
          config.batch_size // jax.process_count(),
          size,
          size,
          networks.num_classes,
          config.seed,
      ),
      mesh,
  )
  frozen, perceptual_weights = perceptual.params_for_timing(config.loss)
  step = steps.make_train_steps(config, networks, mesh, frozen)[phase]
  compiled = profiling.compile_and_analyse(
      step.jitted,
      state,
      batch,
      step.frozen,
      model=plain_step(config, mesh, phase),
  )

  def train_step():
    nonlocal state
    state, metrics = compiled.call(state, batch, step.frozen)
    return metrics

  seconds = profiling.median_call_seconds(
      train_step, warmup_steps, windows, window_steps
  )
  profile = None
  if profile_dir:
    profiling.trace_calls(train_step, profile_dir, profile_steps)
    hlo_path = os.path.join(profile_dir, "optimized_hlo.txt")
    atomic_files.write_text(hlo_path, compiled.call.as_text())
    profile = {"dir": profile_dir, "steps": profile_steps, "hlo": hlo_path}
  devices = list(mesh.devices.flat)
  memory, memory_source = profiling.peak_memory_bytes(
      devices, compiled.memory_bytes_per_device
  )
  return {
      "mode": "train",
      "phase": phase,
      "image_size": size,
      "global_batch": config.batch_size,
      **_rates(
          compiled,
          seconds,
          config.batch_size,
          mesh.size,
          profiling.peak_flops(mesh, layers.compute_dtype(config.dtype)),
      ),
      "peak_memory_bytes": memory,
      "peak_memory_source": memory_source,
      "timing": f"median of {windows} windows of {window_steps} steps",
      "perceptual_terms": list(perceptual.enabled_terms(config.loss)),
      "perceptual_weights": perceptual_weights if frozen else None,
      "profile": profile,
      **_environment(devices, config),
  }


def parse_size(text: str) -> tuple[int, int]:
  """'HEIGHTxWIDTH' -> (height, width).

  Raises:
    ValueError: `text` is not two positive integers joined by 'x'.
  """
  parts = text.lower().split("x")
  if len(parts) != 2 or not all(_is_positive_integer(part) for part in parts):
    raise ValueError(f"Size {text!r} is not HEIGHTxWIDTH, e.g. 1024x2048.")
  return int(parts[0]), int(parts[1])


def parse_batch_size(text: str) -> int:
  """'8' -> 8.

  Raises:
    ValueError: `text` is not a positive integer.
  """
  if not _is_positive_integer(text):
    raise ValueError(f"Batch size {text!r} is not a positive integer.")
  return int(text)


def _is_positive_integer(text: str) -> bool:
  return text.isdigit() and int(text) > 0


def measure_infer(
    config: ml_collections.ConfigDict,
    sizes: Sequence[tuple[int, int]],
    batch_sizes: Sequence[int],
    warmup_calls: int,
    windows: int,
    window_calls: int,
) -> Results:
  """Times SP-Net + SG-Net on one device; returns the figures.

  The top-level figures are the batch-1 latency at `sizes[0]`
  (`step_time_ms`, `compile_s`) and the best throughput over `batch_sizes`
  at that size (`images_per_sec`, `tflops_per_sec`, `mfu`); the peak memory
  is the largest of all the runs.
  """
  device = jax.devices()[0]
  mesh = sharding.make_mesh([device])
  networks = spg.Networks.from_config(config)
  params = networks.init(jax.random.key(config.seed), config.data.image_size)
  params = jax.device_put({"sp": params["sp"], "sg": params["sg"]}, device)
  peak = profiling.peak_flops(mesh, layers.compute_dtype(config.dtype))

  def completion(nets: spg.Networks) -> Any:
    def complete(params, image, labels, mask):
      return nets.complete(params, image, nets.one_hot(labels), mask)

    return jax.jit(complete)

  complete = completion(networks)
  plain_complete = completion(spg.Networks.from_config(plain_config(config)))

  def run(batch_size: int, height: int, width: int) -> tuple[Results, int]:
    batch = jax.device_put(
        random_batch(batch_size, height, width, networks.num_classes, 0),
        device,
    )
    args = (params, batch["image"], batch["label"], batch["mask"])
    compiled = profiling.compile_and_analyse(
        complete, *args, model=plain_complete
    )
    seconds = profiling.median_call_seconds(
        lambda: compiled.call(*args), warmup_calls, windows, window_calls
    )
    return (
        _rates(compiled, seconds, batch_size, 1, peak),
        compiled.memory_bytes_per_device,
    )

  latency = {}
  memory = []  # each run's compiled bytes
  for height, width in sizes:
    latency[f"{height}x{width}"], bytes_used = run(1, height, width)
    memory.append(bytes_used)
  throughput = {}
  for batch_size in batch_sizes:
    throughput[batch_size], bytes_used = run(batch_size, *sizes[0])
    memory.append(bytes_used)
  best = max(throughput, key=lambda b: throughput[b]["images_per_sec"])
  first = latency[f"{sizes[0][0]}x{sizes[0][1]}"]
  peak_memory, memory_source = profiling.peak_memory_bytes(
      [device], max(memory)
  )
  return {
      "mode": "infer",
      "step_time_ms": first["step_time_ms"],
      "compile_s": first["compile_s"],
      "images_per_sec": throughput[best]["images_per_sec"],
      "best_batch": best,
      "tflops_per_sec": throughput[best]["tflops_per_sec"],
      "mfu": throughput[best]["mfu"],
      "peak_memory_bytes": peak_memory,
      "peak_memory_source": memory_source,
      "latency_batch_1": latency,
      "throughput": {
          str(batch): figures for batch, figures in throughput.items()
      },
      "timing": f"median of {windows} windows of {window_calls} calls",
      **_environment([device], config),
  }


def measure_input(
    config: ml_collections.ConfigDict, warmup_batches: int, batches: int
) -> Results:
  """Times the host pipeline's training batches; returns the figures."""
  # Imported here, not at the top, so that the train and infer modes run on
  # machines without TensorFlow.
  # pylint: disable=g-import-not-at-top
  from spg_jax.data import data_source
  from spg_jax.data import input_pipeline
  # pylint: enable=g-import-not-at-top

  source = data_source.DataSource.resolve(config.data)
  iterator = input_pipeline.create_train_iterator(config, source)
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
      "mode": flags.DEFINE_enum("mode", "train", MODES, "What to measure."),
      "json": flags.DEFINE_string("json", None, "Also write results here."),
      "phase": flags.DEFINE_enum(
          "phase",
          "joint",
          schedules.PHASES,
          "train: the phase whose step is timed.",
      ),
      "warmup": flags.DEFINE_integer(
          "warmup",
          3,
          "train/infer: calls run before timing starts.",
          lower_bound=0,
      ),
      "windows": flags.DEFINE_integer(
          "windows",
          5,
          "train/infer: timed windows; the median is reported.",
          lower_bound=1,
      ),
      "window_calls": flags.DEFINE_integer(
          "window_calls", 5, "train/infer: calls per window.", lower_bound=1
      ),
      "profile_dir": flags.DEFINE_string(
          "profile_dir",
          None,
          "train: after timing, trace --profile_steps more steps into this"
          " directory (read it with benchmarks/trace_summary.py).",
      ),
      "profile_steps": flags.DEFINE_integer(
          "profile_steps", 3, "train: steps traced.", lower_bound=1
      ),
      "infer_sizes": flags.DEFINE_list(
          "infer_sizes",
          ["256x256", "1024x2048"],
          "infer: HEIGHTxWIDTH sizes timed at batch 1; the first is also"
          " timed at each of --infer_batches.",
      ),
      "infer_batches": flags.DEFINE_list(
          "infer_batches",
          ["1", "8", "32"],
          "infer: batch sizes for throughput.",
      ),
      "warmup_batches": flags.DEFINE_integer(
          "warmup_batches",
          4,
          "input: batches read before timing starts.",
          lower_bound=0,
      ),
      "batches": flags.DEFINE_integer(
          "batches", 20, "input: batches timed.", lower_bound=1
      ),
  }
  flags.mark_flags_as_required(["config"])
  return holders


def main(argv: Sequence[str], holders: dict[str, flags.FlagHolder]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = holders["config"].value
  mode = holders["mode"].value
  if holders["profile_dir"].value and mode != "train":
    raise app.UsageError("--profile_dir traces train steps: add --mode=train.")
  try:
    host_cpu.configure(config.cpu)
    if mode != "input":  # the input mode checks the data config itself
      config_checks.check_model_and_steps(config, _mesh(mode))
  except ValueError as error:
    raise app.UsageError(str(error)) from None
  timing = (
      holders["warmup"].value,
      holders["windows"].value,
      holders["window_calls"].value,
  )
  if mode == "train":
    results = measure_train(
        config,
        holders["phase"].value,
        *timing,
        profile_dir=holders["profile_dir"].value,
        profile_steps=holders["profile_steps"].value,
    )
  elif mode == "infer":
    try:
      sizes = [parse_size(text) for text in holders["infer_sizes"].value]
      batch_sizes = [
          parse_batch_size(text) for text in holders["infer_batches"].value
      ]
    except ValueError as error:
      raise app.UsageError(str(error)) from None
    if not sizes or not batch_sizes:
      raise app.UsageError(
          "--infer_sizes and --infer_batches each need at least one value."
      )
    results = measure_infer(config, sizes, batch_sizes, *timing)
  else:
    results = _measure_input_or_exit(
        config, holders["warmup_batches"].value, holders["batches"].value
    )
  # What was run, so that a reader (or `benchmarks.suite`, resuming) can tell
  # which settings the figures are for.
  results["arguments"] = _arguments_without_json(sys.argv[1:])
  text = json.dumps(results, indent=2)
  print(text)
  if holders["json"].value:
    atomic_files.write_text(holders["json"].value, text + "\n")


def _arguments_without_json(arguments: Sequence[str]) -> list[str]:
  """`arguments` without `--json=PATH` or `--json PATH`.

  Where the figures went is not what they measure.
  """
  kept = []
  skip_next = False
  for argument in arguments:
    if skip_next:
      skip_next = False
    elif argument == "--json":
      skip_next = True
    elif not argument.startswith("--json="):
      kept.append(argument)
  return kept


def _mesh(mode: str) -> jax.sharding.Mesh:
  """The devices `mode` runs on: all of them to train, one to infer."""
  if mode == "train":
    return sharding.make_mesh()
  return sharding.make_mesh(jax.devices()[:1])


def _measure_input_or_exit(
    config: ml_collections.ConfigDict, warmup_batches: int, batches: int
) -> Results:
  """`measure_input`, a data error turned into a message and status 1."""
  # pylint: disable-next=g-import-not-at-top
  from spg_jax.data import preparation

  try:
    return measure_input(config, warmup_batches, batches)
  except preparation.DataError as error:
    raise SystemExit(f"Data error: {error}") from None


def run() -> None:
  """The command's entry point."""
  commands.run(_define_flags, main)


if __name__ == "__main__":
  run()
