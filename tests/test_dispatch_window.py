"""Tests of the bound on steps dispatched ahead of the devices."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from spg_jax.runtime import dispatch_window

_REPO = pathlib.Path(__file__).resolve().parents[1]

# 100 data-parallel programs with an all-reduce, dispatched back to back on
# 2 CPU devices. Without a window, 3 of 3 such runs aborted in XLA's
# all-reduce ("Termination timeout") on a 2-core machine (jax 0.10.2).
_COLLECTIVES_PAST_THE_LIMIT = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from spg_jax.runtime import dispatch_window
mesh = Mesh(np.array(jax.devices()), ("batch",))
x = jax.device_put(
    np.random.default_rng(0).random((8, 64, 64, 8), np.float32),
    NamedSharding(mesh, PartitionSpec("batch")),
)
kernel = jnp.ones((3, 3, 8, 8)) / 72
@jax.jit
def smooth_and_sum(x):
  for _ in range(2):
    x = jnp.tanh(jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
  return {"sum": jnp.sum(x), "mean_square": jnp.mean(x * x)}
window = dispatch_window.DispatchWindow()
outputs = []
for _ in range(100):
  outputs.append(smooth_and_sum(x))
  window.add(outputs[-1])
jax.block_until_ready(outputs)
print(len(jax.devices()), len(outputs))
"""

# Evaluation over 100 batches on 2 CPU devices, past XLA:CPU's 32
# computations in flight per device.
_EVALUATION_PAST_THE_LIMIT = """
import jax, numpy as np
from configs import synthetic
from spg_jax.evaluation import evaluate
from spg_jax.models import spg
from spg_jax.runtime import sharding
from spg_jax.training import steps
config = synthetic.get_config("tiny")
mesh = sharding.make_mesh()
networks = spg.Networks.from_config(config)
params = sharding.replicate(
    steps.create_train_state(config, networks, jax.random.key(0)).params, mesh
)
rng = np.random.default_rng(0)
size, batch_size = config.data.image_size, 4
batch = {
    "image": rng.uniform(-1, 1, (batch_size, size, size, 3)).astype(np.float32),
    "label": rng.integers(
        0, networks.num_classes, (batch_size, size, size)
    ).astype(np.int32),
    "mask": (rng.uniform(size=(batch_size, size, size, 1)) > 0.5).astype(
        np.float32
    ),
    "weight": np.ones([batch_size], np.float32),
}
results = evaluate.evaluate(
    evaluate.make_eval_step(networks), params, [batch] * 100, mesh
)
print(len(jax.devices()), results["num_examples"])
"""


def _run_on_two_devices(code: str) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, "-c", code],
      cwd=_REPO,
      capture_output=True,
      text=True,
      env={
          **os.environ,
          "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
      },
      timeout=300,
      check=False,
  )


def test_an_empty_window_is_refused():
  with pytest.raises(ValueError, match="holds >= 1 step, not 0"):
    dispatch_window.DispatchWindow(0)


@jax.jit
def _slow_step(x):
  for _ in range(8):
    x = jnp.tanh(x @ x)
  return x


def _most_unfinished_steps(
    window: dispatch_window.DispatchWindow | None,
) -> int:
  """Dispatches 20 slow steps, adding each to `window` unless it is None;
  returns the most steps seen unfinished just after a dispatch."""
  x = jnp.full([384, 384], 1e-3)
  _slow_step(x).block_until_ready()
  outputs = []
  most = 0
  for _ in range(20):
    outputs.append(_slow_step(x))
    if window is not None:
      window.add(outputs[-1])
    most = max(most, sum(not output.is_ready() for output in outputs))
  jax.block_until_ready(outputs)
  return most


def test_at_most_size_steps_are_unfinished_after_each_add():
  """The window lets the loop run `size` steps ahead, no more (a window that
  waited for every step would keep the device idle between steps). Without
  it the same loop runs further ahead: the host does outrun the device, so
  the bound is the window's doing (seen: all 20 steps unfinished)."""
  size = 3
  assert _most_unfinished_steps(dispatch_window.DispatchWindow(size)) == size
  assert _most_unfinished_steps(None) > size


def test_the_window_hands_back_finished_steps_in_order():
  """What `add` waited for comes back, and `drain` returns the rest."""
  window = dispatch_window.DispatchWindow(2)
  outputs = [jnp.full([3], float(i)) + 1 for i in range(4)]
  assert window.add(outputs[0]) is None
  assert window.add(outputs[1]) is None
  finished = window.add(outputs[2])
  assert finished is outputs[0] and finished.is_ready()
  assert window.add(outputs[3]) is outputs[1]
  rest = window.drain()
  assert [x is y for x, y in zip(rest, outputs[2:])] == [True, True]
  assert all(x.is_ready() for x in rest)
  assert window.drain() == []


def test_collective_programs_past_xla_cpu_limit_do_not_deadlock():
  result = _run_on_two_devices(_COLLECTIVES_PAST_THE_LIMIT)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == ["2", "100"]


def test_evaluation_past_xla_cpu_limit_does_not_deadlock():
  result = _run_on_two_devices(_EVALUATION_PAST_THE_LIMIT)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == ["2", "400.0"]
