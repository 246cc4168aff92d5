"""Tests of the training loop: end to end, resume, and config checks."""

import json
import signal
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import synthetic
from spg_jax.data import input_pipeline
from spg_jax.models import spg
from spg_jax.runtime import atomic_files
from spg_jax.runtime import preemption
from spg_jax.runtime import sharding
from spg_jax.training import checkpoints
from spg_jax.training import divergence
from spg_jax.training import loop
from spg_jax.training import resume_check
from spg_jax.training import schedules
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
        (
            "model.sp_generator.upsampling_form",
            "resize",
            r"sp_generator.upsampling_form='resize' must be one of"
            r" \('phases', 'direct'\)",
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
  # The session's compilation cache (conftest), not one in the workdir
  # (test_compilation_cache tests that, in processes of its own).
  config.compilation_cache_dir = ""
  return config


def _final_params(workdir):
  config = json.loads((workdir / "config.json").read_text())
  assert config["data"]["name"] == "synthetic_scenes/s32"
  cfg = _run_config(config["data"]["data_dir"])
  # The schedule and label source of the run, which may have a segmenter.
  cfg.known_labels = config["known_labels"]
  cfg.schedule.seg.steps = config["schedule"]["seg"]["steps"]
  networks = spg.Networks.from_config(cfg)
  template = steps.create_train_state(cfg, networks, jax.random.key(1))
  manager = checkpoints.make_manager(workdir, cfg)
  state, meta = checkpoints.restore_latest(manager, template)
  return jax.device_get(state), meta


@pytest.mark.xdist_group("trained_run")
def test_tiny_config_trains_and_evaluates_end_to_end(trained_run):
  """The tiny config's run (conftest.trained_run: 6 seg, 6 sp, 6 sg and 2
  joint steps at rate 2e-3) writes what it should, and each phase trains its
  net.

  The learning margins hold with room to spare: over seeds 0-4 the sp phase
  raised the hole's mIoU 1.8 to 3.1 times, the sg phase cut the hole's L1
  error to 0.73-0.82 of what it was, and the run ended at 0.65-0.76 of the
  initial L1 error.
  """
  config, workdir = trained_run.config, trained_run.workdir
  # The evaluations after each phase and the final one share one step,
  # compiled once (the initial parameters' too).
  assert len(trained_run.eval_steps) == 1
  assert trained_run.eval_steps[0]._cache_size() == 1  # pylint: disable=protected-access
  written = json.loads((workdir / "eval" / "metrics.json").read_text())
  assert written == pytest.approx(trained_run.results)
  for key in ("l1", "l2", "psnr", "ssim", "l1_hole", "psnr_hole", "ssim_hole",
              "miou_hole", "baseline_meanfill/l1_hole",
              "baseline_meanfill/psnr_hole", "segmenter/miou_known"):
    assert np.isfinite(written[key]), key
  assert written["num_examples"] == 64
  # Composited outputs equal the input outside the hole, so whole-image error
  # is a fraction of the hole error.
  assert written["l1"] < written["l1_hole"]
  assert 0 <= written["miou_hole"] <= 1
  initial, after_seg, after_sp, after_sg, final = trained_run.evaluations
  assert final == trained_run.results
  # The segmenter learns in its phase, and no later phase changes it.
  segmenter_scores = [
      evaluation["segmenter/miou_known"] for evaluation in trained_run.evaluations
  ]
  assert after_seg["segmenter/miou_known"] > 1.2 * initial["segmenter/miou_known"]
  assert segmenter_scores[1:] == [after_seg["segmenter/miou_known"]] * 4
  # SP-Net learns in its phase, from the segmenter's labels; the sg phase
  # leaves it exactly as it was.
  assert after_sp["miou_hole"] > 1.4 * after_seg["miou_hole"]
  assert after_sg["miou_hole"] == after_sp["miou_hole"]
  # SG-Net learns in its phase, and the run ends well below where it began.
  assert after_sg["l1_hole"] < 0.9 * after_sp["l1_hole"]
  assert final["l1_hole"] < 0.85 * initial["l1_hole"]
  assert final["miou_hole"] > 1.4 * initial["miou_hole"]
  total = schedules.total_steps(config.schedule)
  assert (workdir / "samples" / f"step_{total:08d}.png").exists()
  state, meta = _final_params(workdir)
  assert int(state.step) == total
  assert meta == {
      "step": total,
      "phase": "joint",
      "config": checkpoints.config_as_json(config),
  }


@pytest.fixture(scope="module")
def uninterrupted_params(scenes_data_dir, tmp_path_factory):
  """The final parameters of `_run_config`'s run, never stopped; shared by
  the tests that stop and resume it (one xdist group, "uninterrupted")."""
  workdir = tmp_path_factory.mktemp("uninterrupted")
  loop.train_and_evaluate(_run_config(scenes_data_dir), str(workdir))
  return _final_params(workdir)[0]


def _assert_equal_params(expected, workdir):
  resumed, _ = _final_params(workdir)
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(resumed),
                  strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.xdist_group("uninterrupted")
def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(
    tmp_path, scenes_data_dir, monkeypatch, uninterrupted_params
):
  config = _run_config(scenes_data_dir)

  make_iterator = input_pipeline.create_train_iterator

  def interrupted_iterator(config, source, start_step=0):
    # Crash once the checkpoint of step 3, saved in the background, has
    # landed, while reading a batch after it (the loop reads
    # prefetch_batches ahead of the step).
    batches = make_iterator(config, source, start_step)
    for step, batch in enumerate(batches, start_step):
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
  # Settings that change no result may differ on resume.
  config.log_every_steps = 1
  config.prefetch_batches = 1
  loop.train_and_evaluate(config, str(tmp_path / "resumed"))
  _assert_equal_params(uninterrupted_params, tmp_path / "resumed")


def _poisoned_at(poisoned_step):
  """create_train_iterator whose batch for step `poisoned_step` (from 0)
  holds NaN images."""
  make_iterator = input_pipeline.create_train_iterator

  def poisoned(config, source, start_step=0):
    batches = make_iterator(config, source, start_step)
    for step, batch in enumerate(batches, start_step):
      if step == poisoned_step:
        batch = {**batch, "image": np.full_like(batch["image"], np.nan)}
      yield batch

  return poisoned


def test_a_nonfinite_step_stops_the_run_keeping_the_last_good_checkpoint(
    tmp_path, scenes_data_dir, monkeypatch
):
  """The tiny run: sp steps 1-2, sg 3-4, joint 5-6; a checkpoint every 3
  steps, a log every 2. Step 4's batch is NaN."""
  config = _run_config(scenes_data_dir)
  monkeypatch.setattr(input_pipeline, "create_train_iterator",
                      _poisoned_at(3))
  with pytest.raises(
      divergence.DivergenceError,
      match=r"Training diverged at step 4 \(phase sg\): .*sg/l1_hole.* not"
      r" finite\. That step's update was not applied, 1 step\(s\) of this"
      r" window were bad, and the latest checkpoint, step 3, was saved"
      r" before it\. .*--config.on_nonfinite=skip"):
    loop.train_and_evaluate(config, str(tmp_path))
  manager = checkpoints.make_manager(tmp_path, config)
  manager.wait_until_finished()
  assert manager.all_steps() == [3]
  assert not (tmp_path / "eval").exists()


def test_skip_goes_on_without_the_nonfinite_steps_update(
    tmp_path, scenes_data_dir, monkeypatch
):
  config = _run_config(scenes_data_dir)
  config.on_nonfinite = "skip"
  monkeypatch.setattr(input_pipeline, "create_train_iterator",
                      _poisoned_at(3))
  results = loop.train_and_evaluate(config, str(tmp_path))
  assert all(np.isfinite(value) for value in results.values())
  state, _ = _final_params(tmp_path)
  assert int(state.step) == 6
  # SG-Net updates in 2 sg and 2 joint steps; the NaN one was dropped.
  assert (int(state.sg.step), int(state.sp.step)) == (3, 4)
  for leaf in jax.tree.leaves(state.params):
    assert np.all(np.isfinite(leaf))


@pytest.mark.xdist_group("uninterrupted")
def test_sigterm_saves_the_step_and_a_rerun_ends_like_an_uninterrupted_run(
    tmp_path, scenes_data_dir, monkeypatch, uninterrupted_params
):
  """SIGTERM, sent while the loop reads the batch of step 3 (from 0), ends
  the run after that step with its checkpoint saved, though checkpoints
  fall every 3 steps; the same call again finishes the run exactly."""
  config = _run_config(scenes_data_dir)
  make_iterator = input_pipeline.create_train_iterator
  handler_before = signal.getsignal(signal.SIGTERM)

  def signalling_iterator(config, source, start_step=0):
    batches = make_iterator(config, source, start_step)
    for step, batch in enumerate(batches, start_step):
      if step == 3 + config.prefetch_batches:
        # The loop's handler, not one that would end pytest.
        assert signal.getsignal(signal.SIGTERM) is not handler_before
        signal.raise_signal(signal.SIGTERM)
      yield batch

  monkeypatch.setattr(input_pipeline, "create_train_iterator",
                      signalling_iterator)
  with pytest.raises(preemption.Preempted, match="after step 4, saved") as (
      stopped):
    loop.train_and_evaluate(config, str(tmp_path / "resumed"))
  monkeypatch.undo()
  assert stopped.value.step == 4
  assert signal.getsignal(signal.SIGTERM) is handler_before
  manager = checkpoints.make_manager(tmp_path / "resumed", config)
  assert manager.all_steps() == [3, 4]
  loop.train_and_evaluate(config, str(tmp_path / "resumed"))
  _assert_equal_params(uninterrupted_params, tmp_path / "resumed")


def _checkpointed_workdir(workdir, config):
  """A workdir as a run of `config` leaves it at step 3: config.json and a
  checkpoint whose metadata holds `config`. Resume checks read only the
  metadata, so the checkpoint's state is a stand-in."""
  atomic_files.write_text(
      workdir / "config.json", config.to_json_best_effort()
  )
  manager = checkpoints.make_manager(workdir, config)
  checkpoints.save(manager, 3, {"stand_in": np.zeros([2])}, "sp", config)
  manager.wait_until_finished()


def test_a_resume_with_another_batch_size_stops_before_compiling(
    tmp_path, scenes_data_dir, monkeypatch
):
  config = _run_config(scenes_data_dir)
  _checkpointed_workdir(tmp_path, config)
  saved_json = (tmp_path / "config.json").read_text()
  config.batch_size = 8

  def compiles(*args, **kwargs):
    raise AssertionError("the run went on to build its train state")

  monkeypatch.setattr(steps, "create_train_state", compiles)
  with pytest.raises(resume_check.ConfigChangeError) as error:
    loop.train_and_evaluate(config, str(tmp_path))
  message = str(error.value)
  assert "batch_size: 4 in the checkpoint, 8 now" in message
  assert "--config.resume_allow_changes=batch_size" in message
  assert (tmp_path / "config.json").read_text() == saved_json


def _check(workdir, config):
  resume_check.check_config_unchanged(
      config, workdir, checkpoints.make_manager(workdir, config)
  )


def test_resume_checks_accept_safe_and_allowed_changes(
    tmp_path, scenes_data_dir
):
  config = _run_config(scenes_data_dir)
  _checkpointed_workdir(tmp_path, config)
  always = {
      "log_every_steps": 7,
      "sample_every_steps": 7,
      "checkpoint_every_steps": 7,
      "eval_every_steps": 7,
      "eval.batch_size": 8,
      "prefetch_batches": 1,
      "cpu.devices": 4,
      "compilation_cache_dir": "elsewhere",
      "model.remat": "full",
      "model.sp_generator.output_conv_form": "space_to_depth",
      "keep_checkpoints": 1,
      "num_samples": 1,
      "data.data_dir": str(tmp_path),
  }
  config.update_from_flattened_dict(always)
  _check(tmp_path, config)
  config.schedule.joint.steps += 10
  config.schedule.joint.decay_steps += 10
  config.batch_size = 8
  with pytest.raises(resume_check.ConfigChangeError) as error:
    _check(tmp_path, config)
  for line in ("batch_size: 4 in the checkpoint, 8 now",
               "schedule.joint.decay_steps: ", "schedule.joint.steps: "):
    assert line in str(error.value)
  config.resume_allow_changes = "schedule.joint"
  with pytest.raises(resume_check.ConfigChangeError) as error:
    _check(tmp_path, config)
  assert "batch_size: 4 in the checkpoint, 8 now" in str(error.value)
  assert "schedule.joint" not in str(error.value)
  config.resume_allow_changes = "schedule.joint, batch_size"
  _check(tmp_path, config)


def test_network_shapes_cannot_change_on_resume_even_when_allowed(
    tmp_path, scenes_data_dir
):
  config = _run_config(scenes_data_dir)
  _checkpointed_workdir(tmp_path, config)
  config.model.sp_generator.base_features = 8
  config.data.classes = "cityscapes_train_ids"
  config.resume_allow_changes = "model,data"
  with pytest.raises(resume_check.ConfigChangeError) as error:
    _check(tmp_path, config)
  message = str(error.value)
  assert (
      "model.sp_generator.base_features: 4 in the checkpoint, 8 now" in message
  )
  assert (
      "data.classes: 'cityscapes_categories' in the checkpoint,"
      " 'cityscapes_train_ids' now"
  ) in message
  assert "can never change on resume" in message


def test_a_key_added_since_the_checkpoint_compares_as_its_old_value():
  """A checkpoint saved before a network option existed resumes under the
  option's default, the value it was trained with, and under no other."""
  saved = {"seed": 0, "model": {"base_features": 4}}
  now = {"seed": 0, "model": {"base_features": 4,
                              "label_injection": "input",
                              "guidance": "labels"}}
  assert resume_check.changes(saved, now) == []
  now["model"]["label_injection"] = "decoder"
  assert [str(change) for change in resume_check.changes(saved, now)] == [
      "model.label_injection: 'input' in the checkpoint, 'decoder' now"
  ]
  # A phase's end rate: runs saved before it existed decayed to 0.
  saved["schedule"] = {"joint": {"steps": 20}}
  now = {**saved, "schedule": {"joint": {"steps": 20,
                                         "end_learning_rate": 0.0}}}
  assert resume_check.changes(saved, now) == []
  now["schedule"]["joint"]["end_learning_rate"] = 1e-5
  assert [str(change) for change in resume_check.changes(saved, now)] == [
      "schedule.joint.end_learning_rate: 0.0 in the checkpoint, 1e-05 now"
  ]


def test_a_checkpoint_without_a_config_is_checked_against_config_json(
    tmp_path, scenes_data_dir
):
  config = _run_config(scenes_data_dir)
  atomic_files.write_text(
      tmp_path / "config.json", config.to_json_best_effort()
  )
  # A checkpoint as spg_jax saved them before they held the config.
  manager = checkpoints.make_manager(tmp_path, config)
  manager.save(3, args=ocp.args.Composite(
      state=ocp.args.StandardSave({"stand_in": np.zeros([2])}),
      meta=ocp.args.JsonSave({"step": 3, "phase": "sp"}),
  ))
  manager.wait_until_finished()
  config.seed = 5
  with pytest.raises(resume_check.ConfigChangeError) as error:
    _check(tmp_path, config)
  assert "seed: 0 in the checkpoint, 5 now" in str(error.value)
  assert str(tmp_path / "config.json") in str(error.value)


def test_a_half_written_checkpoint_is_never_restored_and_its_owner_removes_it(
    tmp_path):
  """What a run killed mid-save leaves: Orbax's temporary directory."""
  config = synthetic.get_config("tiny")
  manager = checkpoints.make_manager(tmp_path, config, owner=True)
  checkpoints.save(manager, 3, {"x": np.arange(4.0)}, "sp", config)
  manager.wait_until_finished()
  partial = tmp_path / "checkpoints" / "5.orbax-checkpoint-tmp-1796040000"
  (partial / "state").mkdir(parents=True)
  (partial / "state" / "half_written").write_bytes(b"\0" * 10)
  reader = checkpoints.make_manager(tmp_path, config)
  assert reader.latest_step() == 3
  assert partial.exists()  # a reader leaves a live run's save alone
  owner = checkpoints.make_manager(tmp_path, config, owner=True)
  assert owner.latest_step() == 3
  # Orbax removes it in the background, finished before the first save.
  checkpoints.save(owner, 6, {"x": np.arange(4.0)}, "sp", config)
  owner.wait_until_finished()
  assert not partial.exists()
  assert owner.all_steps() == [3, 6]
