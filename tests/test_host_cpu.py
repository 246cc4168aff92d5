"""Tests of spg_jax.runtime.host_cpu: config `cpu` reaches JAX and XLA, or an error
says why not."""

import os
import pathlib
import subprocess
import sys

import jax
import ml_collections
import pytest

from spg_jax.runtime import host_cpu

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _cpu(devices=0, scheduler="default"):
  return ml_collections.ConfigDict(dict(devices=devices, scheduler=scheduler))


def test_devices_and_scheduler_reach_jax_and_xla(tmp_path):
  """In a fresh process whose XLA_FLAGS ask for 4 devices and the
  concurrency-optimised scheduler, config `cpu` wins: 3 devices, and the
  compiled program's debug options carry the memory-optimised scheduler. A
  second call, everything in force, passes."""
  code = (
      "import jax, jax.numpy as jnp, ml_collections\n"
      "from spg_jax.runtime import host_cpu\n"
      "cpu = ml_collections.ConfigDict(\n"
      "    dict(devices=3, scheduler='memory_optimized'))\n"
      "host_cpu.configure(cpu)\n"
      "jax.jit(lambda x: x + 1)(jnp.ones(4))\n"
      "host_cpu.configure(cpu)\n"
      "print(len(jax.devices()))\n"
  )
  dump = tmp_path / "dump"
  flags = (
      "--xla_force_host_platform_device_count=4"
      " --xla_cpu_enable_concurrency_optimized_scheduler=true"
      f" --xla_dump_to={dump}"
  )
  result = subprocess.run(
      [sys.executable, "-c", code],
      cwd=_REPO,
      env={**os.environ, "XLA_FLAGS": flags},
      capture_output=True,
      text=True,
      check=False,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split()[-1] == "3"
  options = "".join(path.read_text() for path in dump.glob("*.debug_options"))
  scheduler = "xla_cpu_scheduler_type: CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"
  assert scheduler in options


def test_too_late_is_an_error_unless_already_in_force(monkeypatch):
  flags = "--xla_force_host_platform_device_count=4"
  monkeypatch.setenv("XLA_FLAGS", flags)
  jax.devices()  # The backends have started.
  host_cpu.configure(_cpu())
  for late in (_cpu(scheduler="memory_optimized"), _cpu(devices=2)):
    with pytest.raises(RuntimeError, match="before JAX starts its backends"):
      host_cpu.configure(late)
  assert os.environ["XLA_FLAGS"] == flags
  in_force = f"{flags} --xla_cpu_enable_concurrency_optimized_scheduler=false"
  monkeypatch.setenv("XLA_FLAGS", in_force)
  host_cpu.configure(_cpu(scheduler="memory_optimized"))
  assert os.environ["XLA_FLAGS"] == in_force


@pytest.mark.parametrize(
    "cpu, message",
    [
        (_cpu(devices=-1), "config.cpu.devices=-1 must be >= 0"),
        (_cpu(scheduler="fast"), "config.cpu.scheduler='fast' must be one of"),
    ],
)
def test_bad_values_name_their_key(cpu, message):
  with pytest.raises(ValueError, match=message):
    host_cpu.check_cpu_config(cpu)
