"""Tests of a checkpoint disk that is full, or too small from the start."""

import collections
import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from spg_jax.training import checkpoints

_REPO = pathlib.Path(__file__).resolve().parents[1]
_MIB = 2**20


# Run before the command it replaces itself with (no fork of this process,
# which holds JAX's threads): writing past 40 kB fails, as on a full disk.
_WITH_FILE_SIZE_LIMIT = (
    "import os, resource, signal, sys;"
    " signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
    " resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000));"
    " os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def test_a_full_disk_at_save_time_stops_the_run_with_the_reason(
    tmp_path, scenes_data_dir
):
  """The tiny run's checkpoint outgrows the limit (Orbax's metadata file
  alone is 62 kB; how its arrays are packed into files varies from run to
  run, so they cannot be relied on): the run stops with the cause and
  what is left, and no half-written step looks whole."""
  workdir = tmp_path / "work"
  result = subprocess.run(
      [
          sys.executable, "-c", _WITH_FILE_SIZE_LIMIT, "-m", "spg_jax.main",
          "--config=configs/synthetic.py:tiny", f"--workdir={workdir}",
          "--config.data.name=synthetic_scenes/s32",
          f"--config.data.data_dir={scenes_data_dir}",
          "--config.compilation_cache_dir=",
      ],
      cwd=_REPO, capture_output=True, text=True, check=False,
  )
  assert result.returncode != 0
  assert (
      f"Checkpoint not saved: Writing a checkpoint under {workdir}/checkpoints"
      " failed"
  ) in result.stderr
  assert "File too large" in result.stderr.split("Checkpoint not saved")[1]
  assert "The latest whole checkpoint is none" in result.stderr
  saved = [p.name for p in (workdir / "checkpoints").iterdir()]
  assert saved and all("tmp" in name for name in saved), saved


_DiskUsage = collections.namedtuple("_DiskUsage", "total used free")


@pytest.mark.parametrize(
    "free_mib, existing, refused",
    [
        (40, 0, True),  # 4 checkpoints of 11 MiB: 44 MiB needed
        (45, 0, False),
        (12, 3, False),  # 3 kept already: one more is written first
        (10, 3, True),
    ],
)
def test_the_room_for_checkpoints_is_checked_before_training(
    tmp_path, monkeypatch, free_mib, existing, refused
):
  state = {"w": np.zeros(10 * _MIB // 4, np.float32)}  # 10 MiB of arrays
  manager = checkpoints.make_manager(
      tmp_path, ml_collections.ConfigDict({"keep_checkpoints": 3}),
      owner=True,
  )
  for step in range(existing):
    manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave({"w": np.ones(1)})),
    )
  manager.wait_until_finished()
  monkeypatch.setattr(
      checkpoints.shutil, "disk_usage",
      lambda path: _DiskUsage(10**12, 0, free_mib * _MIB),
  )
  if not refused:
    checkpoints.check_free_space(manager, state, keep=3)
    return
  with pytest.raises(checkpoints.NotEnoughSpaceError) as raised:
    checkpoints.check_free_space(manager, state, keep=3)
  needed = 11 * (4 - existing if existing < 3 else 1)
  assert str(raised.value) == (
      f"The disk of {tmp_path / 'checkpoints'} has {free_mib / 1024:.2f} GiB"
      f" free; this run's checkpoints need about {needed / 1024:.2f} GiB more"
      " (0.01 GiB each, config.keep_checkpoints=3 kept and one being"
      " written). Make room, choose a --workdir on a larger disk, or lower"
      " --config.keep_checkpoints."
  )

