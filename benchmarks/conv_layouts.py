r"""Times every convolution of SP-Net in NHWC and in NCHW dimension order.

  python -m benchmarks.conv_layouts --config=configs/synthetic.py

spg_jax's layers order dimensions as flax does, NHWC with HWIO kernels. XLA
picks the physical layout of each array itself, but the logical order is
where it starts from, and backends differ in which they favour. This traces
SP-Net's forward pass at one device's share of the config's batch (with
`config.cpu` applied, as training runs on a CPU), its image size and dtype,
takes each distinct convolution in it (the generator's 7x7 stem and head,
its stride-2 downsamplings, residual blocks and the four phases of each
upsampling), and times its forward pass with both gradients, as training
runs it, once as traced and once with the operands transposed to NCHW and
OIHW. It prints a Markdown table and the totals; a measuring instrument for
BENCHMARKS.md, not part of the package.
"""

from collections.abc import Callable
from typing import Any

from absl import app
from absl import flags
import jax
from jax.extend import core
import jax.numpy as jnp
import ml_collections

from benchmarks import piece_flags
from spg_jax.benchmarking import profiling
from spg_jax.models import layers
from spg_jax.models import spg
from spg_jax.runtime import host_cpu

_NHWC = ("NHWC", "HWIO", "NHWC")
_NCHW = ("NCHW", "OIHW", "NCHW")
# Axis permutations from the NHWC operands to the NCHW ones.
_TO_NCHW = (0, 3, 1, 2)
_TO_OIHW = (3, 2, 0, 1)


def _convolutions(jaxpr: core.Jaxpr) -> list[core.JaxprEqn]:
  """The `conv_general_dilated` equations of `jaxpr` and its sub-programs."""
  found = []
  for equation in jaxpr.eqns:
    if equation.primitive.name == "conv_general_dilated":
      found.append(equation)
    for sub_jaxpr in core.jaxprs_in_params(equation.params):
      found.extend(_convolutions(sub_jaxpr))
  return found


def _describe(equation: core.JaxprEqn) -> str:
  lhs = equation.invars[0].aval
  kernel = equation.invars[1].aval.shape
  stride = equation.params["window_strides"][0]
  return (
      f"{kernel[0]}x{kernel[1]}/{stride} {kernel[2]}->{kernel[3]}"
      f" at {lhs.shape[1]}x{lhs.shape[2]}"
  )


def layout_gradients(
    equation: core.JaxprEqn, nchw: bool
) -> tuple[Callable[..., Any], tuple[jax.Array, jax.Array]]:
  """The jitted gradients of `equation`'s convolution in one layout, and
  operands for it (the same random ones in either layout, transposed to
  NCHW and OIHW when `nchw`)."""
  params = equation.params
  lhs_key, kernel_key = jax.random.split(jax.random.key(0))
  lhs, kernel = (
      jax.random.normal(key, var.aval.shape, var.aval.dtype)
      for key, var in zip((lhs_key, kernel_key), equation.invars)
  )
  if nchw:
    lhs, kernel = lhs.transpose(_TO_NCHW), kernel.transpose(_TO_OIHW)

  def loss(lhs, kernel):
    out = jax.lax.conv_general_dilated(
        lhs,
        kernel,
        params["window_strides"],
        params["padding"],
        lhs_dilation=params["lhs_dilation"],
        rhs_dilation=params["rhs_dilation"],
        dimension_numbers=_NCHW if nchw else _NHWC,
    )
    return jnp.sum(jnp.square(out.astype(jnp.float32)))

  return jax.jit(jax.grad(loss, argnums=(0, 1))), (lhs, kernel)


def distinct_convolutions(
    config: ml_collections.ConfigDict, batch_size: int
) -> dict[str, core.JaxprEqn]:
  """SP-Net's convolutions at `batch_size` and the config's size.

  One per distinct shape, named by it.
  """
  networks = spg.Networks.from_config(config)
  size = config.data.image_size
  params = networks.init(jax.random.key(config.seed), size)["sp"]
  batch = [batch_size, size, size]
  image = jnp.zeros(batch + [3])
  labels = jnp.zeros(batch + [networks.num_classes])
  mask = jnp.zeros(batch + [1])
  jaxpr = jax.make_jaxpr(networks.sp.apply)(params, image, labels, mask).jaxpr
  distinct = {}
  for equation in _convolutions(jaxpr):
    distinct.setdefault(_describe(equation), equation)
  return distinct


def main(argv: list[str], holders: dict[str, flags.FlagHolder]) -> None:
  del argv
  config = holders["config"].value
  repeats = holders["repeats"].value
  host_cpu.configure(config.cpu)
  batch_size = piece_flags.per_device_batch_size(config)
  size = config.data.image_size
  distinct = distinct_convolutions(config, batch_size)
  print(
      f"SP-Net, batch {batch_size} (one of {jax.device_count()} devices),"
      f" {size}x{size},"
      f" {layers.compute_dtype(config.dtype).name},"
      f" {jax.devices()[0].device_kind},"
      f" jax {jax.__version__}: forward and both gradients, median ms\n"
  )
  print("| convolution | NHWC ms | NCHW ms | NCHW / NHWC |")
  print("| --- | --- | --- | --- |")
  totals = [0.0, 0.0]
  for name, equation in distinct.items():
    times = [
        profiling.median_single_call_ms(
            *layout_gradients(equation, nchw), repeats
        )
        for nchw in (False, True)
    ]
    totals = [total + t for total, t in zip(totals, times)]
    ratio = times[1] / times[0]
    print(f"| {name} | {times[0]:.2f} | {times[1]:.2f} | {ratio:.2f} |")
  print(
      f"| all {len(distinct)} distinct | {totals[0]:.1f} | {totals[1]:.1f}"
      f" | {totals[1] / totals[0]:.2f} |"
  )


if __name__ == "__main__":
  _holders = piece_flags.define(
      7, "Timed calls per convolution and layout; the median counts."
  )
  app.run(lambda argv: main(argv, _holders))
