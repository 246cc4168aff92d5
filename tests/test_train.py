"""Tests of the training loop: end to end, resume, and config checks."""

import json
import time

import jax
import numpy as np
import pytest

from configs import synthetic
from spg_jax.data import input_pipeline
from spg_jax.evaluation import evaluate
from spg_jax.models import spg
from spg_jax.runtime import sharding
from spg_jax.training import checkpoints
from spg_jax.training import loop
from spg_jax.training import steps


@pytest.mark.parametrize("batch_size", [6, 0])
def test_bad_batch_size_is_refused_before_compiling(batch_size):
  config = synthetic.get_config("tiny")
  config.batch_size = batch_size
  with pytest.raises(
      ValueError,
      match=rf"batch_size={batch_size} must be a positive multiple of the 4"
      r" devices \(config.cpu",
  ):
    loop.validate_config(config, sharding.make_mesh())


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("dtype", "float16", r"config.dtype='float16' must be one of \('float32', 'bfloat16'\)"),
        ("model.remat", "some", r"config.model.remat='some' must be one of \('none',"),
        (
            "model.sg_generator.output_conv_form",
            "fft",
            r"sg_generator.output_conv_form='fft' must be one of"
            r" \('direct', 'space_to_depth'\)",
        ),
    ],
)
def test_bad_model_choices_are_refused_with_the_choices(key, value, message):
  config = synthetic.get_config("tiny")
  config.update_from_flattened_dict({key: value})
  with pytest.raises(ValueError, match=message):
    loop.validate_config(config, sharding.make_mesh())


def _run_config(data_dir):
  config = synthetic.get_config("tiny")
  config.data.name = "synthetic_scenes/s32"
  config.data.data_dir = str(data_dir)
  # JAX's compilation cache is one per process: in-process runs would share
  # the first one's, so each test compiles its own (test_compilation_cache
  # tests the cache, in processes of its own).
  config.compilation_cache_dir = ""
  return config


def _final_params(workdir):
  config = json.loads((workdir / "config.json").read_text())
  assert config["data"]["name"] == "synthetic_scenes/s32"
  cfg = _run_config(config["data"]["data_dir"])
  networks = spg.Networks.from_config(cfg)
  template = steps.create_train_state(cfg, networks, jax.random.key(1))
  manager = checkpoints.make_manager(workdir, cfg)
  state, meta = checkpoints.restore_latest(manager, template)
  return jax.device_get(state), meta


def test_tiny_config_trains_and_evaluates_end_to_end(
    tmp_path, scenes_data_dir, monkeypatch
):
  config = _run_config(scenes_data_dir)
  config.eval_every_steps = 2  # two evaluations during the run, one after
  made_steps = []

  def recorded_eval_step(networks):
    made_steps.append(make_eval_step(networks))
    return made_steps[-1]

  make_eval_step = evaluate.make_eval_step
  monkeypatch.setattr(evaluate, "make_eval_step", recorded_eval_step)
  results = loop.train_and_evaluate(config, str(tmp_path))
  # The three evaluations share one step, compiled once.
  assert len(made_steps) == 1 and made_steps[0]._cache_size() == 1  # pylint: disable=protected-access
  written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
  assert written == pytest.approx(results)
  for key in ("l1", "l2", "psnr", "ssim", "l1_hole", "psnr_hole", "ssim_hole",
              "miou_hole", "baseline_meanfill/l1_hole",
              "baseline_meanfill/psnr_hole"):
    assert np.isfinite(written[key]), key
  assert written["num_examples"] == 64
  # Composited outputs equal the input outside the hole, so whole-image error
  # is a fraction of the hole error.
  assert written["l1"] < written["l1_hole"]
  assert 0 <= written["miou_hole"] <= 1
  total = steps.total_steps(config.schedule)
  assert (tmp_path / "samples" / f"step_{total:08d}.png").exists()
  state, meta = _final_params(tmp_path)
  assert int(state.step) == total and meta == {"step": total, "phase": "joint"}


def test_bfloat16_run_reaches_the_metrics_of_a_float32_run(
    tmp_path, scenes_data_dir
):
  """Mixed precision trains the same model: after the tiny run the hole's
  PSNR is within 0.5 dB and its mIoU within 0.05 of float32's."""
  results = {}
  for dtype in ("float32", "bfloat16"):
    config = _run_config(scenes_data_dir)
    config.dtype = dtype
    results[dtype] = loop.train_and_evaluate(config, str(tmp_path / dtype))
  assert results["bfloat16"]["psnr_hole"] == pytest.approx(
      results["float32"]["psnr_hole"], abs=0.5
  )
  assert results["bfloat16"]["miou_hole"] == pytest.approx(
      results["float32"]["miou_hole"], abs=0.05
  )


def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(
    tmp_path, scenes_data_dir, monkeypatch
):
  config = _run_config(scenes_data_dir)
  loop.train_and_evaluate(config, str(tmp_path / "whole"))

  make_iterator = input_pipeline.create_train_iterator

  def interrupted_iterator(config, start_step=0):
    # Crash once the checkpoint of step 3, saved in the background, has
    # landed, while reading a batch after it (the loop reads
    # prefetch_batches ahead of the step).
    for step, batch in enumerate(make_iterator(config, start_step), start_step):
      if step == 4 + config.prefetch_batches:
        deadline = time.monotonic() + 120
        while not saved.exists() and time.monotonic() < deadline:
          time.sleep(0.1)
        raise KeyboardInterrupt("simulated preemption")
      yield batch

  saved = tmp_path / "resumed" / "checkpoints" / "3"

  monkeypatch.setattr(input_pipeline, "create_train_iterator", interrupted_iterator)
  with pytest.raises(KeyboardInterrupt):
    loop.train_and_evaluate(config, str(tmp_path / "resumed"))
  monkeypatch.undo()
  manager = checkpoints.make_manager(tmp_path / "resumed", config)
  assert manager.latest_step() == 3
  loop.train_and_evaluate(config, str(tmp_path / "resumed"))

  whole, _ = _final_params(tmp_path / "whole")
  resumed, _ = _final_params(tmp_path / "resumed")
  for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed), strict=True):
    np.testing.assert_array_equal(a, b)
