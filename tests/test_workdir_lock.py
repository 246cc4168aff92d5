"""Tests of the one-run-per-workdir lock."""

import json
import os
import socket
import subprocess
import sys

import pytest

from spg_jax.runtime import workdir_lock
from spg_jax.training import loop


def _lock(workdir, pid, host=None):
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / workdir_lock.LOCK_NAME).write_text(json.dumps(
      {"host": host or socket.gethostname(), "pid": pid,
       "started": "2026-11-30T12:00:00+00:00"}))


def _ended_pid():
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait()
  return process.pid


def test_the_lock_is_held_for_the_body_and_released(tmp_path):
  with workdir_lock.hold(tmp_path / "run") as path:
    holder = json.loads(path.read_text())
    assert holder["pid"] == os.getpid()
    assert holder["host"] == socket.gethostname()
  assert not path.exists()


@pytest.mark.parametrize("host", [None, "another-host"])
def test_a_second_run_is_refused_while_the_first_lives(tmp_path, host):
  """Alive here (this process), or on a host whose processes it cannot
  see."""
  pid = os.getpid() if host is None else _ended_pid()
  _lock(tmp_path, pid, host)
  with pytest.raises(
      workdir_lock.WorkdirInUseError,
      match=f"in use by process {pid} on {host or socket.gethostname()}"
      r" since 2026-11-30T12:00:00\+00:00 \(its lock: .*run.lock\)\. Two runs"
      r" in one workdir would overwrite each other's checkpoints\."):
    with workdir_lock.hold(tmp_path):
      pytest.fail("entered a locked workdir")
  assert json.loads((tmp_path / "run.lock").read_text())["pid"] == pid


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
  _lock(tmp_path, _ended_pid())
  with workdir_lock.hold(tmp_path) as path:
    assert json.loads(path.read_text())["pid"] == os.getpid()
  assert not path.exists()


def test_an_unwritable_workdir_is_reported_before_training(tmp_path,
                                                           scenes_config):
  (tmp_path / "file").write_text("not a folder")
  with pytest.raises(workdir_lock.WorkdirNotWritableError,
                     match=f"Cannot write to the workdir {tmp_path}/file/run:"
                     r" .*Choose a --workdir"):
    loop.train_and_evaluate(scenes_config, str(tmp_path / "file" / "run"))


def test_training_refuses_a_workdir_in_use_and_writes_nothing(
    tmp_path, scenes_config):
  _lock(tmp_path, os.getpid())
  with pytest.raises(workdir_lock.WorkdirInUseError):
    loop.train_and_evaluate(scenes_config, str(tmp_path))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["run.lock"]
