"""How JAX uses the host's CPU when it trains there: devices and scheduling.

On a CPU, XLA runs this model's many small operations on about one core at a
time. Splitting the CPU into several JAX devices runs the data-parallel
step's shares side by side, as on several accelerators. XLA:CPU's default
scheduler orders operations so that independent ones can run at once, which
keeps more activations alive than the cache holds; the memory-optimised one
keeps fewer. Config `cpu` chooses both (BENCHMARKS.md has the measurements);
neither touches an accelerator's devices or compiler.

Both take effect only if set before JAX starts its backends, so the programs
(`spg_jax.main`, `spg_jax.benchmark`) call `configure` before anything else
runs on JAX.
"""

import os

import jax
from jax._src import xla_bridge  # backends_are_initialized has no public name.
import ml_collections

# Config `cpu.scheduler` -> the value of XLA's --xla_cpu_scheduler_type.
SCHEDULERS = {
    "default": "CPU_SCHEDULER_TYPE_DEFAULT",
    "memory_optimized": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED",
    "concurrency_optimized": "CPU_SCHEDULER_TYPE_CONCURRENCY_OPTIMIZED",
}


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


def configure(cpu: ml_collections.ConfigDict) -> None:
  """Applies config `cpu` to JAX's CPU backend, which must not have started.

  Args:
    cpu: `devices`, how many JAX devices the host CPU is split into (0 keeps
      JAX's choice: one, or what `--xla_force_host_platform_device_count`
      in XLA_FLAGS asks for), and `scheduler`, a key of `SCHEDULERS`
      ('default' leaves XLA_FLAGS as it is).

  Raises:
    ValueError: a value of `cpu` is out of range.
    RuntimeError: there is something to apply and JAX has already started
      its backends.
  """
  check_cpu_config(cpu)
  if not cpu.devices and cpu.scheduler == "default":
    return
  if xla_bridge.backends_are_initialized():
    raise RuntimeError(
        "spg_jax.host_cpu.configure must run before JAX starts its backends,"
        " that is before any JAX computation or device query."
    )
  if cpu.devices:
    jax.config.update("jax_num_cpu_devices", cpu.devices)
  if cpu.scheduler != "default":
    # XLA reads XLA_FLAGS when the backends start; of two values of one
    # flag, the later wins.
    os.environ["XLA_FLAGS"] = " ".join(
        filter(
            None,
            (
                os.environ.get("XLA_FLAGS"),
                f"--xla_cpu_scheduler_type={SCHEDULERS[cpu.scheduler]}",
            ),
        )
    )
