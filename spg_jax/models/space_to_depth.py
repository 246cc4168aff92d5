"""Stride-1 convolutions computed at half resolution, on space-to-depth input.

A wide kernel from a few channels to fewer (SG-Net's last layer: 7x7, 16 ->
3 channels at full resolution) is a poor shape for XLA:CPU, which leaves
convolutions of at most 16 channels to its generic kernels. Folding each 2x2
block of pixels into the channels turns a k x k convolution from C to O
channels on an H x W image into a t x t one, t = (k + 1) / 2, from 4C to 4O
channels on H/2 x W/2, which YNNPACK takes; the output unfolds back. It is
the same function up to float rounding. On a 2-core CPU it computes
SG-Net's last layer and its two gradients 1.6 times as fast; SP-Net's
(16 -> 8) it makes slower (`benchmarks/output_conv.py`, BENCHMARKS.md).

The folded kernel's t rows become one 1 x t convolution to t blocks of
output channels, which are then summed shifted by their row: YNNPACK unrolls
a convolution's patches before multiplying, and with the 4 x 4 kernel at
batch 8 and 64x64 that buffer outgrows a 32 MiB cache and the convolution
takes 3.4 times as long per image as at batch 7. The work is (2t / k)^2
times the direct form's for the folded kernel's zero taps, and
(H/2 + t - 1) / (H/2) times that for the rows each block computes but no
output reads: 1.43 times in all at k = 7 and 64x64.
"""

import jax
import jax.numpy as jnp

# How a generator computes its output convolution: 'direct' as XLA lowers it,
# 'space_to_depth' as `conv` below.
CONV_FORMS = ("direct", "space_to_depth")

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def fold_kernel(kernel: jax.Array) -> jax.Array:
  """[k, k, C, O] (k odd) -> the folded kernel [t, t, 4C, 4O], t = (k+1)/2.

  Output pixel (2p + a, 2q + b) is input rows 2p + a .. 2p + a + k - 1: in
  folded rows p .. p + t - 1, with the kernel shifted down by a inside
  them. So phase (a, b) sees the kernel padded by a rows before and 1 - a
  after (b columns likewise), cut into 2 x 2 blocks; input channels are
  ordered (row parity, column parity, C), output channels (a, b, O).
  """
  size, _, in_features, out_features = kernel.shape
  taps = (size + 1) // 2
  phases = jnp.stack(
      [
          jnp.pad(kernel, ((a, 1 - a), (b, 1 - b), (0, 0), (0, 0)))
          for a in (0, 1)
          for b in (0, 1)
      ],
      axis=-2,
  )  # [2t, 2t, C, 4, O]
  folded = phases.reshape(taps, 2, taps, 2, in_features, 4 * out_features)
  return folded.transpose(0, 2, 1, 3, 4, 5).reshape(
      taps, taps, 4 * in_features, 4 * out_features
  )


def fold(x: jax.Array) -> jax.Array:
  """[N, 2H, 2W, C] -> [N, H, W, 4C], channels (row parity, col parity, C)."""
  batch, height, width, features = x.shape
  x = x.reshape(batch, height // 2, 2, width // 2, 2, features)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(
      batch, height // 2, width // 2, 4 * features
  )


def unfold(y: jax.Array, features: int) -> jax.Array:
  """[N, H, W, 4O] with channels (a, b, O) -> [N, 2H, 2W, O]."""
  batch, height, width, _ = y.shape
  y = y.reshape(batch, height, width, 2, 2, features)
  return y.transpose(0, 1, 3, 2, 4, 5).reshape(
      batch, 2 * height, 2 * width, features
  )


def conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`lax.conv_general_dilated(x, kernel)`, stride 1, 'VALID', NHWC/HWIO.

  Args:
    x: [N, H, W, C], any H and W at least the kernel's size.
    kernel: [k, k, C, O] with k odd.

  Raises:
    ValueError: the kernel is not square and odd-sized.
  """
  size = kernel.shape[0]
  if kernel.shape[1] != size or size % 2 == 0:
    raise ValueError(
        "A space-to-depth convolution needs a square kernel of odd size; got"
        f" {kernel.shape[0]}x{kernel.shape[1]}."
    )
  out_height = x.shape[1] - size + 1
  out_width = x.shape[2] - size + 1
  # An odd side gains a row or column that only feeds outputs cut off below.
  x = jnp.pad(x, ((0, 0), (0, x.shape[1] % 2), (0, x.shape[2] % 2), (0, 0)))
  folded_x = fold(x)
  folded_kernel = fold_kernel(kernel)
  taps, _, in_features, out_features = folded_kernel.shape
  rows = folded_x.shape[1] - taps + 1
  # [1, t, 4C, t * 4O]: kernel row r yields output block r.
  row_kernels = folded_kernel.transpose(1, 2, 0, 3).reshape(
      1, taps, in_features, taps * out_features
  )
  blocks = jax.lax.conv_general_dilated(
      folded_x,
      row_kernels,
      window_strides=(1, 1),
      padding="VALID",
      dimension_numbers=_DIMENSIONS,
  )
  blocks = blocks.reshape(*blocks.shape[:3], taps, out_features)
  folded_y = sum(blocks[:, row : row + rows, :, row] for row in range(taps))
  return unfold(folded_y, kernel.shape[-1])[:, :out_height, :out_width]

