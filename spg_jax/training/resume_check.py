"""Refuses to resume a run under a config that changes what it computes.

A resumed run continues from its checkpoint with the config it is given now:
its data order (it skips `step x batch_size` examples of a stream seeded by
`config.seed`), its holes, its learning-rate schedules and its networks all
come from that config. If they differ from the checkpoint's, the run is no
longer the run that was interrupted, and a changed network would not even
load. `check_config_unchanged` compares the config with the one saved in the
latest checkpoint (or, for a checkpoint without one, the workdir's
config.json) and stops the run, before anything compiles, naming every
differing key with both values.

Keys that cannot change the results (`ALWAYS_ALLOWED`: logging, sample,
checkpoint and evaluation intervals, batching of evaluation, host settings)
may always change. `config.resume_allow_changes` accepts others that a user
knows to be safe, say a longer joint phase; keys the checkpoint's parameters
depend on (`NEVER_ALLOWED`) stay refused. Each rule is a key path or a prefix
of one (`schedule.joint` covers every key under it) and may hold `*`
(`model.*.output_conv_form`), so that rules survive new and renamed keys.
"""

import dataclasses
import fnmatch
import json
from typing import Any

from absl import logging
from etils import epath
import ml_collections
import orbax.checkpoint as ocp

from spg_jax.models import spg
from spg_jax.training import checkpoints
from spg_jax.training import schedules

# Keys that change no result of a run, only when or how it reports, saves
# and runs on its hosts. data_dir and manual_dir say where the same dataset
# (its name and version are data.name) is stored, the *_weights keys where
# the same pretrained weights are, and eval's weights serve evaluation only;
# on_nonfinite matters only once a step fails (a diverged run may resume
# with 'skip').
ALWAYS_ALLOWED = (
    "log_every_steps",
    "sample_every_steps",
    "num_samples",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "eval_every_steps",
    "eval.batch_size",
    "prefetch_batches",
    "cpu",
    "compilation_cache_dir",
    "model.remat",
    "model.*.output_conv_form",
    "model.*.upsampling_form",
    "data.cache",
    "data.data_dir",
    "data.manual_dir",
    "loss.lpips_weights",
    "loss.vgg19_weights",
    "eval.lpips_weights",
    "eval.fid_weights",
    "on_nonfinite",
    "resume_allow_changes",
)

# Keys the checkpoint's parameters depend on: the networks (but for the
# ALWAYS_ALLOWED ways of computing them) and the class table, whose size is
# the number of label channels.
NEVER_ALLOWED = ("model", "data.classes")

# Keys added after runs were saved with the value those runs computed with
# (the networks' from spg_jax.models.spg): a checkpoint lacking one compares
# as if it held that value, so that a run saved before the key existed
# resumes under today's default.
VALUES_BEFORE_THE_KEY_EXISTED = {
    **spg.VALUES_BEFORE_THE_KEY_EXISTED,
    "loss.joint_true_labels_weight": 0.0,
    # Used only with loss.vgg_weight > 0, which runs saved before them had
    # no way to set.
    "loss.vgg_taps": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
    "loss.vgg_tap_weights": [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0],
    # Each phase's rate decayed to 0 before its end rate could be set.
    **{
        f"schedule.{phase}.end_learning_rate": 0.0
        for phase in schedules.PHASES
    },
}

# Marks a key that one of the two configs lacks.
_ABSENT = "(absent)"


class ConfigChangeError(ValueError):
  """The config of a resumed run differs from its checkpoint's."""


@dataclasses.dataclass(frozen=True)
class Change:
  """A config key whose value differs from the checkpoint's."""

  key: str
  saved: Any
  now: Any

  def __str__(self) -> str:
    return f"{self.key}: {self.saved!r} in the checkpoint, {self.now!r} now"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
  """{'a': {'b': 1}} -> {'a.b': 1}."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def changes(saved: dict[str, Any], now: dict[str, Any]) -> list[Change]:
  """The keys whose values differ between two configs (as JSON), sorted.

  A key of `VALUES_BEFORE_THE_KEY_EXISTED` that a config lacks takes its
  value there.
  """
  saved_flat, now_flat = (VALUES_BEFORE_THE_KEY_EXISTED | _flatten(config)
                          for config in (saved, now))
  return [
      Change(key, saved_flat.get(key, _ABSENT), now_flat.get(key, _ABSENT))
      for key in sorted(saved_flat.keys() | now_flat.keys())
      if saved_flat.get(key, _ABSENT) != now_flat.get(key, _ABSENT)
  ]


def matches(key: str, rules: tuple[str, ...]) -> bool:
  """Whether a rule names `key` or a prefix of it; rules may hold `*`."""
  return any(
      fnmatch.fnmatchcase(key, rule) or fnmatch.fnmatchcase(key, f"{rule}.*")
      for rule in rules
  )


def parse_allowed(value: str) -> tuple[str, ...]:
  """Splits `config.resume_allow_changes`, comma-separated rules."""
  return tuple(rule.strip() for rule in value.split(",") if rule.strip())


def _saved_config(
    manager: ocp.CheckpointManager, workdir: epath.Path
) -> tuple[int, dict[str, Any], str] | None:
  """The latest checkpoint's step, its config and where that was read.

  Returns None if there is no checkpoint, or if it is older than checkpoints
  holding their config and the workdir has no config.json (nothing to
  compare: logged).
  """
  latest = checkpoints.latest_meta(manager)
  if latest is None:
    return None
  step, meta = latest
  if "config" in meta:
    return step, meta["config"], "its metadata"
  path = workdir / "config.json"
  if not path.exists():
    logging.warning(
        "Checkpoint %d holds no config and %s does not exist: resuming"
        " without checking that the config is unchanged.",
        step,
        path,
    )
    return None
  return step, json.loads(path.read_text()), str(path)


def check_config_unchanged(
    config: ml_collections.ConfigDict,
    workdir: epath.PathLike,
    manager: ocp.CheckpointManager,
) -> None:
  """Stops a resumed run whose config changes what the run computes.

  Changes of `ALWAYS_ALLOWED` keys pass silently; those that
  `config.resume_allow_changes` allows pass with a warning.

  Raises:
    ConfigChangeError: naming each refused key with the checkpoint's value
      and the new one, and saying how to proceed.
  """
  saved = _saved_config(manager, epath.Path(workdir))
  if saved is None:
    return
  step, saved_config, origin = saved
  allowed = parse_allowed(config.resume_allow_changes)
  refused, never, accepted = [], [], []
  for change in changes(saved_config, checkpoints.config_as_json(config)):
    if matches(change.key, ALWAYS_ALLOWED):
      continue
    if matches(change.key, NEVER_ALLOWED):
      never.append(change)
    elif matches(change.key, allowed):
      accepted.append(change)
    else:
      refused.append(change)
  if never or refused:
    raise ConfigChangeError(_message(step, origin, never, refused))
  for change in accepted:
    logging.warning(
        "Resuming with a changed config, as config.resume_allow_changes"
        " allows: %s.",
        change,
    )


def _message(
    step: int, origin: str, never: list[Change], refused: list[Change]
) -> str:
  """Names the refused changes and the ways forward."""
  lines = [
      f"The run resumes from checkpoint {step}, but the config it was saved"
      f" with ({origin}) differs from this one in keys that change what the"
      " run computes (its data order, holes, schedules or networks):"
  ]
  lines += [f"  {change}" for change in never + refused]
  lines.append(
      "Set these keys back to the checkpoint's values, or train in a new"
      " --workdir."
  )
  if never:
    lines.append(
        f"{', '.join(change.key for change in never)} can never change on"
        " resume: the checkpoint's parameters would not fit the networks."
    )
  if refused:
    keys = ",".join(change.key for change in refused)
    which = "the other changes are" if never else "these changes are"
    lines.append(
        f"If {which} right for this run (say, a longer joint phase), accept"
        f" them with --config.resume_allow_changes={keys} (comma-separated"
        " keys or key prefixes)."
    )
  return "\n".join(lines)
