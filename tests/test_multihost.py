"""Training over several processes (JAX's multi-controller runtime), on CPUs.

Two processes of two virtual devices each, meeting on 127.0.0.1 and
exchanging their collectives through Gloo, train and evaluate the tiny
config as one process of four devices does, and resume from their own
checkpoint, also after one of them is killed. Slow (processes start and
compile on two cores): run with
`python -m pytest -m slow tests/test_multihost.py`.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from spg_jax.runtime import distributed

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _command(workdir, data_dir, devices, *extra):
  return [
      sys.executable, "-m", "spg_jax.main",
      "--config=configs/synthetic.py:tiny", f"--workdir={workdir}",
      "--config.data.name=synthetic_scenes/s32",
      f"--config.data.data_dir={data_dir}",
      "--config.batch_size=8", f"--config.cpu.devices={devices}",
      "--config.compilation_cache_dir=", *extra,
  ]


def _final_state(workdir: pathlib.Path) -> dict:
  """The last checkpoint's state as NumPy arrays, whatever devices saved it."""
  steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()
                 if p.name.isdigit())
  path = workdir / "checkpoints" / str(steps[-1]) / "state"
  checkpointer = ocp.PyTreeCheckpointer()
  tree = checkpointer.metadata(path).item_metadata.tree
  return checkpointer.restore(path, restore_args=jax.tree.map(
      lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree
  ))


@pytest.mark.slow
def test_two_processes_train_as_one_process_of_as_many_devices(
    tmp_path, scenes_data_dir
):
  single = tmp_path / "single"
  result = subprocess.run(
      _command(single, scenes_data_dir, 4), cwd=_REPO, capture_output=True,
      text=True, check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  double = tmp_path / "double"
  errors = _run_two_processes(double, scenes_data_dir)
  assert "Joined 2 processes as process 1." in errors[1]
  expected, got = _final_state(single), _final_state(double)
  assert int(got["step"]) == int(expected["step"]) == 6
  # Every network's parameters and Adam moments, after 6 steps.
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
      expected, got,
  )
  # Only process 0 writes the run's files beside the checkpoints.
  assert (double / "config.json").exists()
  assert sorted(p.name for p in (double / "samples").iterdir()) == sorted(
      p.name for p in (single / "samples").iterdir()
  )
  # Both evaluate the same 64 test images with the same holes, though each
  # process of the two reads only half of them.
  expected_metrics, got_metrics = (
      json.loads((workdir / "eval" / "metrics.json").read_text())
      for workdir in (single, double)
  )
  assert got_metrics.keys() == expected_metrics.keys()
  for name, value in expected_metrics.items():
    assert got_metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
  # The two processes resume from their own checkpoint of step 3 and end
  # where they ended.
  shutil.rmtree(double / "checkpoints" / "6")
  errors = _run_two_processes(double, scenes_data_dir)
  assert "Resuming from step 3" in errors[0]
  jax.tree.map(np.testing.assert_array_equal, got, _final_state(double))
  # Process 1 killed once the checkpoint of step 3 lands: process 0 stops
  # on its own (JAX aborts it once process 1 misses its heartbeats), and
  # the same two commands resume at step 3 and end where the uninterrupted
  # run ended.
  killed = tmp_path / "killed"
  processes = _start_two_processes(killed, scenes_data_dir)
  deadline = time.monotonic() + 600
  while (not (killed / "checkpoints" / "3").exists()
         and processes[1].poll() is None and time.monotonic() < deadline):
    time.sleep(0.05)
  processes[1].send_signal(signal.SIGKILL)
  assert processes[1].wait() == -signal.SIGKILL, "process 1 ended first"
  survivor_error = processes[0].communicate(
      timeout=_HEARTBEAT_TIMEOUT_SECONDS + 120
  )[1]
  assert processes[0].returncode != 0
  assert "another task died" in survivor_error
  errors = _run_two_processes(killed, scenes_data_dir)
  assert "Resuming from step 3" in errors[0]
  jax.tree.map(np.testing.assert_array_equal, got, _final_state(killed))


# How long a killed process's partner waits before it stops (the flag's
# default, JAX's, is 100 s).
_HEARTBEAT_TIMEOUT_SECONDS = 10


def _start_two_processes(workdir, data_dir) -> list[subprocess.Popen]:
  """Starts the tiny config as two processes of two devices."""
  port = _free_port()
  return [
      subprocess.Popen(
          _command(workdir, data_dir, 2,
                   f"--coordinator_address=127.0.0.1:{port}",
                   "--num_processes=2", f"--process_id={index}",
                   f"--heartbeat_timeout_seconds={_HEARTBEAT_TIMEOUT_SECONDS}"),
          cwd=_REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
          text=True,
      )
      for index in range(2)
  ]


def _run_two_processes(workdir, data_dir) -> list[str]:
  """Runs the tiny config as two processes of two devices; their stderr."""
  processes = _start_two_processes(workdir, data_dir)
  errors = [process.communicate(timeout=900)[1] for process in processes]
  for process, error in zip(processes, errors):
    assert process.returncode == 0, error[-3000:]
  return errors


@pytest.mark.parametrize(
    "environment, detected",
    [
        ({}, False),
        ({"SLURM_NTASKS": "1"}, False),
        ({"SLURM_NTASKS": "4"}, True),
        ({"TPU_WORKER_HOSTNAMES": "localhost"}, False),
        ({"TPU_WORKER_HOSTNAMES": "t1k-0,t1k-1"}, True),
    ],
)
def test_a_cluster_is_detected_from_its_environment(environment, detected):
  assert distributed.cluster_detected(environment) == detected


def test_some_but_not_all_process_settings_are_refused():
  with pytest.raises(ValueError, match="Give --num_processes, --process_id"):
    distributed.initialize("127.0.0.1:1234", None, None)


def test_one_process_without_settings_starts_nothing(monkeypatch):
  monkeypatch.setattr(os, "environ", {})
  distributed.initialize(None, None, None)
  assert jax.process_count() == 1
