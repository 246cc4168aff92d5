"""Tests of the benchmark: its figures' keys and arithmetic, not its speeds."""

import json
import pathlib
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from configs import synthetic
from spg_jax.benchmarking import benchmark
from spg_jax.benchmarking import device_peaks
from spg_jax.benchmarking import profiling

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _tiny_config():
  config = synthetic.get_config("tiny")
  config.data.image_size = 16
  return config


def _check_rates(results, images):
  assert results["images_per_sec"] == pytest.approx(
      images / (results["step_time_ms"] / 1e3)
  )
  assert results["tflops_per_sec"] == pytest.approx(
      results["flops_per_step"] / (results["step_time_ms"] / 1e3) / 1e12
  )
  assert results["mfu"] == pytest.approx(
      results["tflops_per_sec"] / results["peak_tflops_per_sec"]
  )
  assert 0 < results["mfu"] < 1


def test_train_figures_count_the_flops_of_every_device(monkeypatch):
  """The counted FLOPs are the whole mesh's: the same for one device or four
  at the same global batch. XLA's count, one device's share scaled to the
  mesh, is nearly the same (each device repeats the optimizer's update of
  the replicated parameters and the check that they are finite: 7.5% more
  on this tiny network, whose convolutions are few)."""
  config = _tiny_config()
  results_4 = benchmark.measure_train(config, "sp", 1, 1, 1)
  assert results_4["device_count"] == 4
  assert results_4["dtype"] == "float32"
  assert results_4["peak_memory_bytes"] > 0
  assert set(benchmark.RESULT_KEYS) <= results_4.keys()
  _check_rates(results_4, config.batch_size)
  json.dumps(results_4)  # the CLI writes it as JSON
  monkeypatch.setattr(jax, "devices", lambda: jax.local_devices()[:1])
  results_1 = benchmark.measure_train(config, "sp", 1, 1, 1)
  assert results_1["device_count"] == 1
  assert results_4["flops_per_step"] == results_1["flops_per_step"]
  assert results_4["xla_flops_per_step"] == pytest.approx(
      results_1["xla_flops_per_step"], rel=0.1
  )


def test_infer_times_each_size_and_batch():
  config = _tiny_config()
  config.dtype = "bfloat16"
  results = benchmark.measure_infer(config, [(16, 16), (16, 32)], [1, 2], 1, 1, 1)
  assert set(benchmark.RESULT_KEYS) <= results.keys()
  assert results["dtype"] == "bfloat16"
  assert results["device_count"] == 1
  assert set(results["latency_batch_1"]) == {"16x16", "16x32"}
  assert set(results["throughput"]) == {"1", "2"}
  assert str(results["best_batch"]) in results["throughput"]
  assert results["step_time_ms"] == results["latency_batch_1"]["16x16"]["step_time_ms"]
  _check_rates(results["throughput"]["2"], 2)
  best = results["throughput"][str(results["best_batch"])]
  assert results["images_per_sec"] == best["images_per_sec"] == max(
      figures["images_per_sec"] for figures in results["throughput"].values()
  )
  flops = [results["throughput"][b]["flops_per_step"] for b in ("1", "2")]
  assert flops[1] == pytest.approx(2 * flops[0], rel=0.01)
  wide = results["latency_batch_1"]["16x32"]["flops_per_step"]
  assert wide == pytest.approx(2 * flops[0], rel=0.01)


def test_infer_counts_a_folded_convolution_as_the_direct_one():
  """MFU counts the model's FLOPs, not the folded form's extra work."""
  config = _tiny_config()
  flops = {}
  for form in ("direct", "space_to_depth"):
    config.model.sg_generator.output_conv_form = form
    results = benchmark.measure_infer(config, [(16, 16)], [1], 1, 1, 1)
    assert results["output_conv_forms"]["sg"] == form
    flops[form] = results["latency_batch_1"]["16x16"]["flops_per_step"]
  assert flops["space_to_depth"] == flops["direct"]


def test_input_mode_counts_the_images_it_times(scenes_config):
  results = benchmark.measure_input(scenes_config, 1, 3)
  assert results["images"] == 3 * scenes_config.batch_size
  assert results["images_per_sec"] == pytest.approx(
      results["images"] / results["seconds"]
  )


@pytest.mark.parametrize(
    "kind, dtype, tflops",
    [
        ("TPU v5 lite", "bfloat16", 197.0),
        ("TPU v5", "bfloat16", 459.0),
        ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4),
        ("NVIDIA H100 PCIe", "float32", 378.0),
        ("NVIDIA H100 NVL", "bfloat16", 835.5),
        ("NVIDIA A100-SXM4-40GB", "float32", 156.0),
        ("cpu", "float32", None),
    ],
)
def test_peaks_match_the_most_specific_device_kind(kind, dtype, tflops):
  peak = device_peaks.table_peak_flops(kind, dtype)
  assert peak == (tflops * 1e12 if tflops else None)


def _fake_mesh(platform, device_kind, size):
  device = types.SimpleNamespace(platform=platform, device_kind=device_kind)
  return types.SimpleNamespace(
      devices=np.array([device] * size, dtype=object), size=size
  )


def test_an_accelerator_missing_from_the_table_gets_no_mfu():
  """A known GPU's peak is the table's times the devices; an unknown one's
  is None (not a small matmul's rate, which would overstate MFU), and so
  are its MFU and peak figures, while its FLOP/s is still reported."""
  peak = profiling.peak_flops(_fake_mesh("gpu", "NVIDIA H100 80GB HBM3", 2),
                              "bfloat16")
  assert peak == (2 * 989.4e12, "vendor peak (spg_jax.benchmarking.device_peaks)")
  peak = profiling.peak_flops(_fake_mesh("gpu", "NVIDIA B200", 1), "bfloat16")
  assert peak == (None, device_peaks.UNKNOWN_PEAK_SOURCE)
  figures = device_peaks.step_figures(2e12, 0.5, 8, peak, 3.0)
  assert figures["tflops_per_sec"] == 4.0
  assert figures["images_per_sec"] == 16.0
  assert figures["mfu"] is None and figures["peak_tflops_per_sec"] is None


@pytest.mark.parametrize("text", ["256", "256x", "0x256", "axb", "1x2x3"])
def test_bad_sizes_are_refused(text):
  with pytest.raises(ValueError, match="is not HEIGHTxWIDTH"):
    benchmark.parse_size(text)


def test_command_line_writes_the_json_and_refuses_bad_sizes(tmp_path):
  out = tmp_path / "infer.json"
  command = [
      sys.executable, "-m", "spg_jax.benchmarking.benchmark",
      "--config=configs/synthetic.py:tiny", "--mode=infer",
      "--infer_batches=1", "--warmup=0", "--windows=1", "--window_calls=1",
  ]
  result = subprocess.run(
      command + ["--infer_sizes=16x16", f"--json={out}"],
      cwd=_REPO, capture_output=True, text=True, check=False,
  )
  assert result.returncode == 0, result.stderr
  written = json.loads(out.read_text())
  assert written == json.loads(result.stdout[result.stdout.index("{"):])
  assert set(benchmark.RESULT_KEYS) <= written.keys()
  assert written["arguments"] == [*command[3:], "--infer_sizes=16x16"]
  result = subprocess.run(
      command + ["--infer_sizes=16by16"],
      cwd=_REPO, capture_output=True, text=True, check=False,
  )
  assert result.returncode != 0
  assert "Size '16by16' is not HEIGHTxWIDTH" in result.stderr


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--windows=0"], "--windows=0: 0 is not a positive integer"),
        (["--infer_batches=0"], "Batch size '0' is not a positive integer."),
        (["--infer_batches="], "--infer_batches each need at least one value"),
        (["--profile_dir=/tmp/trace"], "--profile_dir traces train steps"),
        (
            ["--mode=train", "--config.batch_size=3"],
            "config.batch_size=3 must be a positive multiple of the 2 devices",
        ),
    ],
)
def test_command_line_refuses_bad_settings_before_measuring(
    arguments, message
):
  result = subprocess.run(
      [
          sys.executable, "-m", "spg_jax.benchmarking.benchmark",
          "--config=configs/synthetic.py:tiny", "--mode=infer", *arguments,
      ],
      cwd=_REPO, capture_output=True, text=True, check=False,
  )
  assert result.returncode != 0
  assert message in result.stderr
  assert not result.stdout.strip()  # no figures printed


def test_the_recorded_arguments_leave_out_where_the_json_went():
  arguments = [
      "--mode=train", "--json", "a.json", "--json=b.json", "--phase=sp",
  ]
  # pylint: disable-next=protected-access
  kept = benchmark._arguments_without_json(arguments)
  assert kept == ["--mode=train", "--phase=sp"]
