"""The training loop: data, steps, logging, samples, checkpoints, evaluation.

The logic lives here rather than in `main.py` so that a notebook can call
`train_and_evaluate` directly. The TensorFlow-free parts (state and steps)
are in `spg_jax.training.steps`.
"""

from collections.abc import Callable, Iterator
import contextlib
import functools

from absl import logging
from clu import metric_writers
from clu import periodic_actions
from etils import epath
import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from spg_jax.data import data_source
from spg_jax.data import input_pipeline
from spg_jax.data import labelling
from spg_jax.evaluation import evaluate
from spg_jax.models import spg
from spg_jax.runtime import atomic_files
from spg_jax.runtime import compilation_cache
from spg_jax.runtime import dispatch_window
from spg_jax.runtime import preemption
from spg_jax.runtime import sharding
from spg_jax.runtime import workdir_lock
from spg_jax.training import checkpoints
from spg_jax.training import config_checks
from spg_jax.training import divergence
from spg_jax.training import perceptual
from spg_jax.training import resume_check
from spg_jax.training import samples
from spg_jax.training import schedules
from spg_jax.training import steps

# How often the loop logs its progress (steps/s, time left) and writes it to
# TensorBoard.
_PROGRESS_EVERY_SECONDS = 30.0


def validate_config(config: ml_collections.ConfigDict, mesh: Mesh) -> None:
  """Checks `config` as `train_and_evaluate` does, without reading any file.

  Raises:
    ValueError: naming the config key at fault and how to fix it.
  """
  config_checks.check_model_and_steps(config, mesh)
  data_source.check_data_config(config.data)


def _is_due(step: int, every: int, last_step: int) -> bool:
  """Whether a periodic action runs after `step` (always after the last)."""
  return step == last_step or (every > 0 and step % every == 0)


def _records(
    window: list[tuple[int, str, steps.Metrics]]
) -> list[divergence.StepRecord]:
  """The window's (step, phase, device metrics), read to the host."""
  host = jax.device_get([metrics for _, _, metrics in window])
  return [
      divergence.StepRecord(step, phase, {k: float(v) for k, v in m.items()})
      for (step, phase, _), m in zip(window, host)
  ]


def _average(records: list[divergence.StepRecord]) -> dict[str, float]:
  """Averages each metric over the steps that reported it."""
  values: dict[str, list[float]] = {}
  for record in records:
    for key, value in record.metrics.items():
      values.setdefault(key, []).append(value)
  return {f"train/{key}": float(np.mean(v)) for key, v in values.items()}


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str
) -> dict[str, float]:
  """Trains SPG-Net per `config`, resuming from `workdir`, then evaluates.

  Writes to `workdir`: config.json, checkpoints/, TensorBoard events,
  samples/*.png, eval/metrics.json and, unless `config.compilation_cache_dir`
  puts it elsewhere, compilation_cache/.

  Returns:
    The final evaluation metrics (also in eval/metrics.json).

  Raises:
    ValueError: a bad config value, named, before anything compiles;
      `resume_check.ConfigChangeError` if the run resumes from a checkpoint
      saved under a config that differs in keys it may not change.
    preparation.DataError: the data files are missing or broken.
    published.WeightsUnavailableError, conversion.WeightsError: a
      perceptual term's converted weights are missing or damaged.
    divergence.DivergenceError: a step was not finite and
      `config.on_nonfinite` is 'stop'.
    preemption.Preempted: SIGTERM arrived; the step it arrived in was
      finished and saved (the save waited for).
    workdir_lock.WorkdirInUseError: another live run holds the workdir.
    workdir_lock.WorkdirNotWritableError: the workdir cannot be written.
    checkpoints.NotEnoughSpaceError: before training, the workdir's disk
      has no room for the checkpoints.
    checkpoints.SaveError: a checkpoint could not be written (a full disk).
  """
  workdir = epath.Path(workdir)
  mesh = sharding.make_mesh()
  config_checks.check_model_and_steps(config, mesh)
  # Missing or damaged pretrained weights fail before the data is read.
  frozen = perceptual.load_params(config.loss)
  backbone = steps.load_backbone(config)
  # The data config is checked, then missing or broken data files fail,
  # before anything compiles.
  source = data_source.DataSource.resolve(config.data)
  # One run per workdir; process 0 holds the lock for all of a run's hosts.
  lock = (workdir_lock.hold(workdir) if jax.process_index() == 0
          else contextlib.nullcontext())
  with lock:
    return _train(config, workdir, mesh, source, frozen, backbone)


def _train(
    config: ml_collections.ConfigDict,
    workdir: epath.Path,
    mesh: Mesh,
    source: data_source.DataSource,
    frozen: steps.Frozen,
    backbone: dict | None,
) -> dict[str, float]:
  """`train_and_evaluate` once its inputs are checked and the workdir is
  the run's alone."""
  manager = checkpoints.make_manager(workdir, config, owner=True)
  resume_check.check_config_unchanged(config, workdir, manager)
  networks = spg.Networks.from_config(config)
  compilation_cache.use(config.compilation_cache_dir, workdir)
  is_chief = jax.process_index() == 0
  if is_chief:
    atomic_files.write_text(
        workdir / "config.json", config.to_json_best_effort(indent=2)
    )

  state = sharding.replicate(
      steps.create_train_state(
          config, networks, jax.random.key(config.seed), backbone
      ),
      mesh,
  )
  state, meta = checkpoints.restore_latest(manager, state)
  checkpoints.check_free_space(manager, state, config.keep_checkpoints)
  start_step = int(state.step)
  if meta is not None:
    logging.info("Resuming from step %d (phase %s).", start_step, meta["phase"])

  writer = metric_writers.create_default_writer(
      workdir, just_logging=not is_chief
  )
  num_steps = schedules.total_steps(config.schedule)
  train_steps = steps.make_train_steps(config, networks, mesh, frozen)
  train_iter = sharding.prefetch_to_mesh(
      input_pipeline.create_train_iterator(config, source, start_step),
      mesh,
      config.prefetch_batches,
  )
  sample_batch = _sample_batch(config, source, mesh)
  complete = jax.jit(functools.partial(_complete_samples, networks))
  eval_step = evaluate.make_eval_step(networks)
  report_progress = periodic_actions.ReportProgress(
      num_train_steps=num_steps,
      writer=writer,
      every_secs=_PROGRESS_EVERY_SECONDS,
  )

  # Each step's number, phase and metrics since the last log, read on the
  # host only when logged or before a checkpoint.
  window: list[tuple[int, str, steps.Metrics]] = []
  in_flight = dispatch_window.DispatchWindow()
  # Whatever ends the loop (a divergence, SIGTERM, Ctrl-C), the saves under
  # way land first, so the latest checkpoint on disk is whole.
  with preemption.StopRequest() as stop_request, _saves_landed(manager):
    for step in range(start_step, num_steps):
      phase = schedules.phase_at(step, config.schedule)
      with jax.profiler.StepTraceAnnotation("train", step_num=step):
        batch = next(train_iter)
        state, metrics = train_steps[phase](state, batch)
      in_flight.add(metrics)
      done = step + 1
      window.append((done, phase, metrics))
      report_progress(done)
      if _is_due(done, config.log_every_steps, num_steps):
        records = _records(window)
        checkpoints.check_saves(manager)
        skipped = divergence.check(records, config.on_nonfinite,
                                   manager.latest_step())
        writer.write_scalars(
            done, _average(records) | {"train/skipped_steps": skipped}
        )
        window = []
      if _is_due(done, config.sample_every_steps, num_steps):
        _write_samples(
            config, complete, state, sample_batch,
            source.class_table, done, workdir, writer,
        )
      if (_is_due(done, config.checkpoint_every_steps, num_steps)
          or stop_request.requested):
        # Nothing is saved after a non-finite step the run should stop at
        # (with 'skip', the log counts them).
        if config.on_nonfinite == "stop":
          divergence.check(_records(window), config.on_nonfinite,
                           manager.latest_step())
        checkpoints.save(manager, done, state, phase, config)
      if stop_request.requested:
        checkpoints.wait(manager)
        writer.flush()
        raise preemption.Preempted(done)
      if config.eval_every_steps and done % config.eval_every_steps == 0:
        if done < num_steps:
          _write_eval(config, source, eval_step, state, mesh, writer, done)

  results = _write_eval(
      config, source, eval_step, state, mesh, writer, num_steps
  )
  if is_chief:
    evaluate.write_metrics_json(workdir / "eval" / "metrics.json", results)
  checkpoints.wait(manager)
  writer.flush()
  return results


@contextlib.contextmanager
def _saves_landed(manager: ocp.CheckpointManager) -> Iterator[None]:
  """Waits for `manager`'s saves under way when the body ends, however
  (unless a save failed: then nothing more lands)."""
  try:
    yield
  except checkpoints.SaveError:
    raise
  except BaseException:
    checkpoints.wait(manager)
    raise
  checkpoints.wait(manager)


def _sample_batch(
    config: ml_collections.ConfigDict,
    source: data_source.DataSource,
    mesh: Mesh,
) -> dict[str, jax.Array]:
  """The first evaluation examples, shown in every sample grid."""
  batch = next(input_pipeline.create_eval_iterator(config, source))
  return sharding.shard_batch(batch, mesh)


def _complete_samples(
    networks: spg.Networks,
    params: dict[str, spg.Params],
    batch: dict[str, jax.Array],
) -> tuple[jax.Array, jax.Array]:
  """Completes a batch, its known labels from the run's source."""
  known = networks.known_label_map(
      params, batch["image"], batch["mask"], batch["label"]
  )
  return networks.complete(params, batch["image"], known, batch["mask"])


def _write_samples(
    config: ml_collections.ConfigDict,
    complete: Callable[..., tuple[jax.Array, jax.Array]],
    state: steps.SPGState,
    batch: dict[str, jax.Array],
    class_table: labelling.ClassTable,
    step: int,
    workdir: epath.Path,
    writer: metric_writers.MetricWriter,
) -> None:
  """Completes the sample batch and writes its first `num_samples` rows
  (process 0 writes; every process takes part in computing them)."""
  labels, output = complete(state.params, batch)
  # Each process holds only its share of the batch's rows.
  labels, output, batch = multihost_utils.process_allgather(
      (labels, output, batch), tiled=True
  )
  if jax.process_index() != 0:
    return
  shown = slice(0, config.num_samples)
  grid = samples.make_grid(
      batch["image"][shown],
      batch["mask"][shown],
      labels[shown],
      output[shown],
      class_table,
  )
  samples.write_grid(grid, step, workdir / "samples", writer)


def _write_eval(
    config: ml_collections.ConfigDict,
    source: data_source.DataSource,
    eval_step: evaluate.EvalStep,
    state: steps.SPGState,
    mesh: Mesh,
    writer: metric_writers.MetricWriter,
    step: int,
) -> dict[str, float]:
  """Evaluates the current parameters and logs the metrics under eval/."""
  results = evaluate.evaluate(
      eval_step,
      state.params,
      input_pipeline.create_eval_iterator(config, source),
      mesh,
      void_id=source.class_table.void_id,
  )
  writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
  logging.info("Evaluation at step %d: %s", step, results)
  return results
