"""The inputs of the PyTorch reference outputs, made from fixed NumPy seeds.

scripts/make_torch_fixtures.py (run once, with torch) and the tests both
call these, so the tests rebuild the very weights and images the reference
outputs in tests/fixtures/torch/ were computed from. NumPy only: the script
runs where spg_jax and JAX may not be installed.
"""

from collections.abc import Mapping, Sequence
import zlib

import numpy as np

# The image pairs that LPIPS' reference distances compare: non-square, so
# that a height/width mix-up shows.
IMAGE_SHAPE = (4, 48, 64, 3)


def random_weights(
    shapes: Mapping[str, Sequence[int]], seed: int
) -> dict[str, np.ndarray]:
  """Weights in the published names and shapes, scaled as He's initialiser
  scales them (so activations keep their size through the layers); arrays
  named like LPIPS' heads are made non-negative, as the trained ones are.
  Each array has its own stream, seeded by `seed` and its name, so the order
  in which `shapes` lists them does not matter."""
  weights = {}
  for name, shape in shapes.items():
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    values = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    if name.startswith("lin"):
      values = np.abs(values)
    elif len(shape) == 1:
      values = values * 0.1
    weights[name] = values.astype(np.float32)
  return weights


def images(seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Two batches of smooth random images in [-1, 1], NHWC float32: the
  second a perturbed copy of the first, so distances are neither 0 nor
  saturated."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(-1, 1, (IMAGE_SHAPE[0], 6, 8, 3))
  first = np.kron(coarse, np.ones((1, 8, 8, 1)))
  first = np.clip(first + rng.normal(0, 0.1, IMAGE_SHAPE), -1, 1)
  second = np.clip(first + rng.normal(0, 0.3, IMAGE_SHAPE), -1, 1)
  return first.astype(np.float32), second.astype(np.float32)
