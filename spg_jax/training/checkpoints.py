"""Orbax checkpoints of the whole training state, and automatic resume.

A checkpoint holds the networks' parameters and optimizer states, the step,
and, as JSON beside them, the step, its phase and the run's config, which a
resumed run's config is checked against (`spg_jax.training.resume_check`).
Orbax writes each checkpoint in a temporary folder and renames it when
complete, so a run killed mid-save leaves the previous checkpoint as the
latest; saves are asynchronous, and `wait` is called before the run ends.
A save that fails (a full disk, say) raises `SaveError` at the next save,
`check_saves` or `wait`, and a run checks for free room for its
checkpoints before it trains (`check_free_space`).
"""

from collections.abc import Iterator
import contextlib
import dataclasses
import json
import shutil
from typing import Any

from etils import epath
import jax
import ml_collections
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"
# What a checkpoint holds beside its arrays (Orbax's metadata), about.
_METADATA_BYTES = 2**20


class SaveError(RuntimeError):
  """A checkpoint could not be written (a full disk, say)."""


class NotEnoughSpaceError(RuntimeError):
  """The workdir's disk has no room for the run's checkpoints."""


def make_manager(
    workdir: epath.PathLike,
    config: ml_collections.ConfigDict,
    owner: bool = False,
) -> ocp.CheckpointManager:
  """A manager of `workdir/checkpoints` keeping the latest few checkpoints.

  Orbax writes a checkpoint into a temporary directory and renames it when
  whole, so a run killed mid-save leaves a temporary directory, never a
  step that looks whole. The run that owns the workdir (`owner`: the
  training loop, which holds its lock) removes such leftovers, in the
  background, before its first save; readers (inference, evaluation) leave
  them, as they may belong to a live save.
  """
  directory = epath.Path(workdir) / CHECKPOINT_DIR
  if not directory.is_absolute() and "://" not in str(directory):
    directory = directory.absolute()
  return ocp.CheckpointManager(
      directory,
      options=ocp.CheckpointManagerOptions(
          max_to_keep=config.keep_checkpoints,
          enable_async_checkpointing=True,
          cleanup_tmp_directories=owner,
      ),
  )


def _saved_tree(state: Any) -> Any:
  """What a checkpoint holds of `state`.

  A state dataclass is saved as a dict of its fields that are not None, so
  that an optional network (the segmenter) changes nothing in the
  checkpoints of runs without it, those of older versions included.
  """
  if not dataclasses.is_dataclass(state):
    return state
  return {
      field.name: getattr(state, field.name)
      for field in dataclasses.fields(state)
      if getattr(state, field.name) is not None
  }


def config_as_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """`config` as the JSON that checkpoints and config.json hold."""
  return json.loads(config.to_json_best_effort())


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    phase: str,
    config: ml_collections.ConfigDict,
) -> None:
  """Starts saving `state` as checkpoint `step` (asynchronously).

  The metadata holds the step, its phase and `config`, as config.json does.
  """
  meta = {"step": step, "phase": phase, "config": config_as_json(config)}
  with _save_errors_reported(manager):
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(_saved_tree(state)),
            meta=ocp.args.JsonSave(meta),
        ),
    )


def check_saves(manager: ocp.CheckpointManager) -> None:
  """Raises `SaveError` if a save that has ended failed; waits for none."""
  with _save_errors_reported(manager):
    manager.check_for_errors()


def wait(manager: ocp.CheckpointManager) -> None:
  """Waits for the saves under way; raises `SaveError` if one failed."""
  with _save_errors_reported(manager):
    manager.wait_until_finished()


@contextlib.contextmanager
def _save_errors_reported(manager: ocp.CheckpointManager) -> Iterator[None]:
  """Turns the error of a failed background save into a `SaveError` that
  says what failed, what is still on disk and how to go on."""
  try:
    yield
  except SaveError:
    raise
  except Exception as error:  # Orbax re-raises its writer's error as is.
    cause = " ".join(str(error).split())
    if len(cause) > 400:  # The writer's reason (an OS error) comes last.
      cause = cause[:150] + " ... " + cause[-250:]
    latest = manager.latest_step()
    raise SaveError(
        f"Writing a checkpoint under {manager.directory} failed"
        f" ({type(error).__name__}: {cause}). The latest whole checkpoint"
        f" is {'none' if latest is None else f'step {latest}'}; the"
        " half-written one is removed when the run resumes. Make room on"
        " that disk (or move the workdir to one with room), then rerun the"
        " same command to resume."
    ) from error


def check_free_space(
    manager: ocp.CheckpointManager, state: Any, keep: int
) -> None:
  """Refuses to train if the checkpoints' disk cannot hold what they need.

  A run keeps `keep` checkpoints and writes one more before the oldest is
  deleted; those it already has count as room. A bucket is not checked.

  Raises:
    NotEnoughSpaceError: with the room needed and the room free.
  """
  directory = epath.Path(manager.directory)
  if "://" in str(directory):
    return
  existing = len(manager.all_steps())
  per_checkpoint = _METADATA_BYTES + sum(
      leaf.nbytes for leaf in jax.tree.leaves(state)
  )
  needed = per_checkpoint * max(1, keep + 1 - existing)
  # The manager has made the directory (Orbax's `create` option).
  free = shutil.disk_usage(directory).free
  if free < needed:
    raise NotEnoughSpaceError(
        f"The disk of {directory} has {free / 2**30:.2f} GiB free; this"
        f" run's checkpoints need about {needed / 2**30:.2f} GiB more"
        f" ({per_checkpoint / 2**30:.2f} GiB each, config.keep_checkpoints"
        f"={keep} kept and one being written). Make room, choose a --workdir"
        " on a larger disk, or lower --config.keep_checkpoints."
    )


def latest_meta(
    manager: ocp.CheckpointManager,
) -> tuple[int, dict[str, Any]] | None:
  """The latest checkpoint's step and metadata, without reading its state.

  Returns:
    (step, metadata), the metadata as `save` wrote it (a checkpoint of an
    older version lacks 'config'), or None if there is no checkpoint yet.
  """
  step = manager.latest_step()
  if step is None:
    return None
  restored = manager.restore(
      step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
  )
  return step, restored.meta


def restore_latest(
    manager: ocp.CheckpointManager, state: Any, step: int | None = None
) -> tuple[Any, dict[str, Any] | None]:
  """Restores the latest checkpoint into `state`'s structure and shardings.

  Args:
    manager: the run's checkpoint manager.
    state: the structure, dtypes and shardings to restore into.
    step: a saved step to restore instead of the latest, for looking back
      at a run (for example the end of a phase).

  Returns:
    The restored state and the checkpoint's metadata (as `latest_meta`
    returns it), or `state` unchanged and None if there is no checkpoint
    yet.

  Raises:
    ValueError: `step` is given and not among the saved steps.
  """
  if step is None:
    step = manager.latest_step()
    if step is None:
      return state, None
  elif step not in manager.all_steps():
    raise ValueError(
        f"No checkpoint of step {step} in {manager.directory}; the saved"
        f" steps are {sorted(manager.all_steps())}."
    )
  abstract_state = jax.tree.map(
      ocp.utils.to_shape_dtype_struct, _saved_tree(state)
  )
  restored = manager.restore(
      step,
      args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state),
          meta=ocp.args.JsonRestore(),
      ),
  )
  if dataclasses.is_dataclass(state):
    return state.replace(**restored.state), restored.meta
  return restored.state, restored.meta
