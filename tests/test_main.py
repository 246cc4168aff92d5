"""Tests of the command line, run as a user runs it."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np

import pytest

from configs import synthetic
from spg_jax.models import spg
from spg_jax.training import checkpoints
from spg_jax.training import steps

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(*args, env=None):
  return subprocess.run(
      [sys.executable, *args],
      cwd=_REPO,
      capture_output=True,
      text=True,
      env={**os.environ, **(env or {})},
      check=False,
  )


def test_core_modules_import_no_tensorflow():
  code = (
      "import sys\n"
      "import spg_jax.training.steps, spg_jax.evaluation.evaluate, spg_jax.training.losses, spg_jax.evaluation.metrics\n"
      "import spg_jax.models.spg, spg_jax.training.checkpoints, spg_jax.runtime.sharding\n"
      "import spg_jax.evaluation.hole_set, spg_jax.evaluation.baselines\n"
      "import spg_jax.inference.inpaint, spg_jax.inference.image_files, spg_jax.benchmarking.benchmark\n"
      "import configs.default, configs.cityscapes, configs.synthetic\n"
      "configs.cityscapes.get_config()\n"
      "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))\n"
  )
  result = _run("-c", code)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "[]"


def test_tiny_run_from_the_command_line_with_overrides(tmp_path, scenes_data_dir):
  workdir = tmp_path / "work"
  result = _run(
      "-m", "spg_jax.main",
      "--config=configs/synthetic.py:tiny",
      f"--workdir={workdir}",
      "--config.data.name=synthetic_scenes/s32",
      f"--config.data.data_dir={scenes_data_dir}",
      "--config.loss.gan=hinge",
  )
  assert result.returncode == 0, result.stderr[-3000:]
  # config.cpu.devices=2 of the synthetic config, over conftest's 4.
  assert "local devices: [CpuDevice(id=0), CpuDevice(id=1)]" in result.stderr
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["loss"]["gan"] == "hinge"
  metrics = json.loads((workdir / "eval" / "metrics.json").read_text())
  assert metrics["num_examples"] == 64
  assert "ETA" in result.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "--config.loss.vgg_weight=1.0",
            "Pretrained weights: No converted weights of VGG19's features at"
            " /nonexistent/vgg19.msgpack. Make them with `spg-weights"
            " --names=vgg19`",
        ),
        (
            "--config.cpu.scheduler=fastest",
            "config.cpu.scheduler='fastest' must be one of",
        ),
    ],
)
def test_bad_config_is_refused_before_training(tmp_path, override, message):
  result = _run(
      "-m", "spg_jax.main",
      "--config=configs/synthetic.py:tiny",
      f"--workdir={tmp_path}",
      override,
      env={"SPG_JAX_WEIGHTS": "/nonexistent"},
  )
  assert result.returncode != 0
  assert message in result.stderr
  assert not (tmp_path / "checkpoints").exists()


def test_unknown_config_variant_is_refused(tmp_path):
  result = _run(
      "-m", "spg_jax.main",
      "--config=configs/synthetic.py:huge",
      f"--workdir={tmp_path}",
  )
  assert result.returncode != 0
  assert "Unknown config variant 'huge'" in result.stderr


def test_cityscapes_tiny_trains_and_evaluates_from_the_archives(
    tmp_path, cityscapes_manual_dir, seeded_weights_dir
):
  """With the paper's LPIPS term, on seeded AlexNet weights converted as
  `spg-weights` converts the published ones."""
  workdir = tmp_path / "work"
  result = _run(
      "-m", "spg_jax.main",
      "--config=configs/cityscapes.py:tiny",
      f"--workdir={workdir}",
      f"--config.data.manual_dir={cityscapes_manual_dir}",
      f"--config.data.data_dir={tmp_path / 'tfds'}",
      env={"XLA_FLAGS": "", "SPG_JAX_WEIGHTS": str(seeded_weights_dir)},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "sg/lpips" in result.stderr
  metrics = json.loads((workdir / "eval" / "metrics.json").read_text())
  assert metrics["num_examples"] == 2  # The fake val split.
  assert (workdir / "samples" / "step_00000006.png").exists()


def test_cityscapes_without_its_archives_says_what_to_do(
    tmp_path, seeded_weights_dir
):
  workdir = tmp_path / "work"
  result = _run(
      "-m", "spg_jax.main",
      "--config=configs/cityscapes.py:tiny",
      f"--workdir={workdir}",
      f"--config.data.manual_dir={tmp_path / 'empty'}",
      f"--config.data.data_dir={tmp_path / 'tfds'}",
      env={"XLA_FLAGS": "", "SPG_JAX_WEIGHTS": str(seeded_weights_dir)},
  )
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  assert "leftImg8bit_trainvaltest.zip" in result.stderr
  assert "gtFine_trainvaltest.zip" in result.stderr
  assert str(tmp_path / "empty" / "gtFine_trainvaltest.zip") in result.stderr
  assert "https://www.cityscapes-dataset.com" in result.stderr
  # It stopped before creating any state: no checkpoint, no event file.
  assert not (workdir / "checkpoints").exists()
  assert not list(workdir.glob("events.out.tfevents.*"))


# A tiny run of 18 steps (6 per phase), saving after every step and
# evaluating every 4, so that a kill at any moment lands in a step, a save
# or an evaluation.
_KILL_RUN_OVERRIDES = {
    "data.name": "synthetic_scenes/s32",
    "schedule.sp.steps": 6,
    "schedule.sg.steps": 6,
    "schedule.joint.steps": 6,
    "checkpoint_every_steps": 1,
    "keep_checkpoints": 2,
    "eval_every_steps": 4,
    "log_every_steps": 1,
}


def _kill_run_config(data_dir):
  config = synthetic.get_config("tiny")
  config.update_from_flattened_dict(_KILL_RUN_OVERRIDES)
  config.data.data_dir = str(data_dir)
  return config


def _kill_run_command(workdir, data_dir):
  overrides = {**_KILL_RUN_OVERRIDES, "data.data_dir": data_dir}
  return [sys.executable, "-m", "spg_jax.main",
          "--config=configs/synthetic.py:tiny", f"--workdir={workdir}",
          *(f"--config.{key}={value}" for key, value in overrides.items())]


def _saved_steps(workdir):
  directory = workdir / "checkpoints"
  if not directory.exists():
    return set()
  return {int(p.name) for p in directory.iterdir() if p.name.isdigit()}


def _final_state(workdir, data_dir):
  config = _kill_run_config(data_dir)
  networks = spg.Networks.from_config(config)
  template = steps.create_train_state(config, networks, jax.random.key(1))
  manager = checkpoints.make_manager(workdir, config)
  state, meta = checkpoints.restore_latest(manager, template)
  return jax.device_get(state), meta


@pytest.mark.slow
def test_sigkill_at_random_moments_then_rerunning_ends_exactly_as_one_run(
    tmp_path, scenes_data_dir
):
  """Killed three times, each a random moment (seeded) after a new
  checkpoint lands (in a step, a save in the background or an evaluation),
  and rerun with the same command each time, the run ends with the
  parameters of an uninterrupted run, bit for bit: the data stream resumes
  at the step saved, so no example is seen twice or skipped, and a
  half-written checkpoint is never restored."""
  whole = tmp_path / "whole"
  result = subprocess.run(_kill_run_command(whole, scenes_data_dir),
                          cwd=_REPO, capture_output=True, text=True,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  killed = tmp_path / "killed"
  rng = np.random.default_rng(0)
  kills = []
  while len(kills) < 3:
    seen = _saved_steps(killed)
    process = subprocess.Popen(_kill_run_command(killed, scenes_data_dir),
                               cwd=_REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while (process.poll() is None and _saved_steps(killed) <= seen
           and time.monotonic() < deadline):
      time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.5))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended first"
    kills.append(max(_saved_steps(killed), default=0))
  result = subprocess.run(_kill_run_command(killed, scenes_data_dir),
                          cwd=_REPO, capture_output=True, text=True,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert kills == sorted(kills) and kills[-1] < 18, kills
  expected, _ = _final_state(whole, scenes_data_dir)
  resumed, meta = _final_state(killed, scenes_data_dir)
  assert meta["step"] == 18
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(resumed),
                  strict=True):
    np.testing.assert_array_equal(a, b)
  assert not list((killed / "checkpoints").glob("*tmp*"))
  assert not (killed / "run.lock").exists()
