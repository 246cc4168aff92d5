r"""Times the generators' output convolutions, direct and space-to-depth.

  python -m benchmarks.output_conv --config=configs/synthetic.py

Each generator ends in a 7x7 convolution from its base width to a few
channels (SP-Net: one per class, SG-Net: 3). This times that convolution
at one device's share of the config's batch (after `config.cpu`), on one
device, in both `spg_jax.models.space_to_depth.CONV_FORMS`: the forward
pass, the gradient for the input and the gradient for the kernel, each
jitted alone as a training step runs it. It prints a Markdown table; a
measuring instrument for BENCHMARKS.md, not part of the package.
"""

from collections.abc import Callable

from absl import app
from absl import flags
import jax
import ml_collections

from benchmarks import piece_flags
from spg_jax.benchmarking import profiling
from spg_jax.data import classes
from spg_jax.models import layers
from spg_jax.models import space_to_depth
from spg_jax.runtime import host_cpu

_KERNEL_SIZE = 7
_PIECES = ("forward", "input gradient", "kernel gradient")


def _direct(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(
      x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


FORMS = {"direct": _direct, "space_to_depth": space_to_depth.conv}


def output_convolutions(
    config: ml_collections.ConfigDict, batch_size: int
) -> dict[str, tuple[jax.Array, jax.Array, jax.Array]]:
  """Per generator: a reflect-padded input, a kernel and an output cotangent
  of its output convolution's shapes, random, in the config's dtype."""
  dtype = layers.compute_dtype(config.dtype)
  size = config.data.image_size
  padded = size + _KERNEL_SIZE - 1
  out_features = {
      "sp": classes.get_class_table(config.data.classes).num_classes,
      "sg": 3,
  }
  operands = {}
  for index, (name, features) in enumerate(out_features.items()):
    in_features = config.model[f"{name}_generator"].base_features
    keys = jax.random.split(jax.random.key(index), 3)
    operands[name] = (
        jax.random.normal(keys[0], (batch_size, padded, padded, in_features)),
        jax.random.normal(
            keys[1], (_KERNEL_SIZE, _KERNEL_SIZE, in_features, features)
        ),
        jax.random.normal(keys[2], (batch_size, size, size, features)),
    )
    operands[name] = tuple(array.astype(dtype) for array in operands[name])
  return operands


def pieces(
    form: str,
) -> dict[str, Callable[[jax.Array, jax.Array, jax.Array], jax.Array]]:
  """The jitted forward pass and each gradient of `form`'s convolution."""
  conv = FORMS[form]
  return {
      "forward": jax.jit(lambda x, kernel, cotangent: conv(x, kernel)),
      "input gradient": jax.jit(
          lambda x, kernel, cotangent: jax.vjp(
              lambda x: conv(x, kernel), x
          )[1](cotangent)[0]
      ),
      "kernel gradient": jax.jit(
          lambda x, kernel, cotangent: jax.vjp(
              lambda kernel: conv(x, kernel), kernel
          )[1](cotangent)[0]
      ),
  }


def main(argv: list[str], holders: dict[str, flags.FlagHolder]) -> None:
  del argv
  config = holders["config"].value
  repeats = holders["repeats"].value
  host_cpu.configure(config.cpu)
  batch_size = piece_flags.per_device_batch_size(config)
  size = config.data.image_size
  print(
      f"Output 7x7 convolutions, batch {batch_size} (one of"
      f" {jax.device_count()} devices), {size}x{size},"
      f" {layers.compute_dtype(config.dtype).name},"
      f" {jax.devices()[0].device_kind}, jax {jax.__version__}: median ms\n"
  )
  print("| generator | form | " + " | ".join(_PIECES) + " | total |")
  print("| --- | --- |" + " --- |" * (len(_PIECES) + 1))
  for name, operands in output_convolutions(config, batch_size).items():
    channels = f"{operands[1].shape[2]}->{operands[1].shape[3]}"
    for form in FORMS:
      times = [
          profiling.median_single_call_ms(piece, operands, repeats)
          for piece in pieces(form).values()
      ]
      cells = " | ".join(f"{t:.2f}" for t in times)
      print(f"| {name} {channels} | {form} | {cells} | {sum(times):.2f} |")


if __name__ == "__main__":
  _holders = piece_flags.define(
      21, "Timed calls per piece and form; the median counts."
  )
  app.run(lambda argv: main(argv, _holders))
