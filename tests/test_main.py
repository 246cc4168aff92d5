"""Tests of the command line, run as a user runs it."""

import json
import os
import pathlib
import subprocess
import sys

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
      "import spg_jax.steps, spg_jax.evaluate, spg_jax.losses, spg_jax.metrics\n"
      "import spg_jax.models.spg, spg_jax.checkpoints, spg_jax.sharding\n"
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
      # One device, so that the tiny batch need not split over conftest's 4.
      env={"XLA_FLAGS": ""},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["loss"]["gan"] == "hinge"
  metrics = json.loads((workdir / "eval" / "metrics.json").read_text())
  assert metrics["num_examples"] == 64
  assert "ETA" in result.stderr


def test_perceptual_loss_is_refused_before_training(tmp_path):
  result = _run(
      "-m", "spg_jax.main",
      "--config=configs/synthetic.py:tiny",
      f"--workdir={tmp_path}",
      "--config.loss.vgg_weight=1.0",
  )
  assert result.returncode != 0
  assert "Set --config.loss.vgg_weight=0" in result.stderr
  assert not (tmp_path / "checkpoints").exists()


def test_unknown_config_variant_is_refused(tmp_path):
  result = _run(
      "-m", "spg_jax.main",
      "--config=configs/synthetic.py:huge",
      f"--workdir={tmp_path}",
  )
  assert result.returncode != 0
  assert "Unknown config variant 'huge'" in result.stderr
