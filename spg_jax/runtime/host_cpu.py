"""How JAX uses the host's CPU when it trains there: devices and scheduling.

On a CPU, XLA runs this model's many small operations on about one core at a
time. Splitting the CPU into several JAX devices runs the data-parallel
step's shares side by side, as on several accelerators. XLA:CPU's default
scheduler orders operations so that independent ones can run at once, which
keeps more activations alive than the cache holds; the memory-optimised one
keeps fewer. Config `cpu` chooses both (BENCHMARKS.md has the measurements);
neither changes an accelerator's devices or compiled programs.

Both take effect only if set before JAX starts its backends, so the programs
(`spg_jax.main`, `spg_jax.benchmarking.benchmark`) and the demo notebook call `configure`
before anything else runs on JAX.
"""

import os

import jax
from jax._src import xla_bridge  # backends_are_initialized has no public name.
import ml_collections

# Config `cpu.scheduler` -> the value of XLA's
# --xla_cpu_enable_concurrency_optimized_scheduler; None leaves XLA_FLAGS as
# it is. (The flag's newer form, --xla_cpu_scheduler_type, would abort any
# XLA-compiled TensorFlow function: TensorFlow's XLA reads XLA_FLAGS too and
# does not know it.)
SCHEDULERS = {
    "default": None,
    "memory_optimized": "false",
    "concurrency_optimized": "true",
}
_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def check_cpu_config(cpu: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the bad key of config `cpu`, if any."""
  if cpu.devices < 0:
    raise ValueError(
        f"config.cpu.devices={cpu.devices} must be >= 0 (0 keeps JAX's"
        " default of one CPU device)."
    )
  if cpu.scheduler not in SCHEDULERS:
    raise ValueError(
        f"config.cpu.scheduler={cpu.scheduler!r} must be one of"
        f" {tuple(SCHEDULERS)}."
    )


def _xla_flags() -> list[str]:
  return os.environ.get("XLA_FLAGS", "").split()


def _in_effect(cpu: ml_collections.ConfigDict) -> bool:
  """Whether everything config `cpu` asks for is already set."""
  devices_set = (
      not cpu.devices or jax.config.jax_num_cpu_devices == cpu.devices
  )
  value = SCHEDULERS[cpu.scheduler]
  scheduler_flags = [
      flag for flag in _xla_flags() if flag.startswith(_SCHEDULER_FLAG + "=")
  ]
  scheduler_set = value is None or (
      scheduler_flags[-1:] == [f"{_SCHEDULER_FLAG}={value}"]
  )
  return devices_set and scheduler_set


def configure(cpu: ml_collections.ConfigDict) -> None:
  """Applies config `cpu` to JAX's CPU backend before it starts.

  Calling it again with settings already in force does nothing, so a
  notebook cell that calls it can run twice.

  Args:
    cpu: `devices`, how many JAX devices the host CPU is split into (0 keeps
      JAX's choice: one, or what `--xla_force_host_platform_device_count`
      in XLA_FLAGS asks for), and `scheduler`, a key of `SCHEDULERS`
      ('default' leaves XLA_FLAGS as it is).

  Raises:
    ValueError: a value of `cpu` is out of range.
    RuntimeError: a setting is not in force and JAX has already started its
      backends, too late to apply it.
  """
  check_cpu_config(cpu)
  if _in_effect(cpu):
    return
  if xla_bridge.backends_are_initialized():
    raise RuntimeError(
        "spg_jax.runtime.host_cpu.configure must run before JAX starts its backends,"
        " that is before any JAX computation or device query; restart the"
        " process (or the notebook's kernel) and call it first."
    )
  if cpu.devices:
    jax.config.update("jax_num_cpu_devices", cpu.devices)
  value = SCHEDULERS[cpu.scheduler]
  if value is not None:
    # XLA reads XLA_FLAGS when the backends start; of two values of one
    # flag, the later wins.
    os.environ["XLA_FLAGS"] = " ".join(
        [*_xla_flags(), f"{_SCHEDULER_FLAG}={value}"]
    )
