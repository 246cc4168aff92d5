"""The inputs of the PyTorch reference outputs, made from fixed NumPy seeds.

scripts/make_torch_fixtures.py (run once, with torch) and the tests both
call these, so the tests rebuild the very weights and images the reference
outputs in tests/fixtures/torch/ were computed from. NumPy only: the script
runs where spg_jax and JAX may not be installed.
"""

from collections.abc import Mapping, Sequence
import pathlib
import zlib

import numpy as np

# Where scripts/make_torch_fixtures.py writes the references.
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "torch"

# The image pairs that LPIPS' reference distances compare: non-square, so
# that a height/width mix-up shows.
IMAGE_SHAPE = (4, 48, 64, 3)
# The scale of the last batch normalisation of each ResNet residual branch.
_RESIDUAL_SCALE = 0.2


def random_weights(
    shapes: Mapping[str, Sequence[int]], seed: int
) -> dict[str, np.ndarray]:
  """Weights in the published names and shapes, scaled as He's initialiser
  scales them (so activations keep their size through the layers); arrays
  named like LPIPS' heads are made non-negative, as the trained ones are.
  Batch normalisations (arrays under a `bn` or `downsample.1` module) get
  scales and variances near 1 and shifts and means near 0, as trained ones
  have; the last one of each ResNet residual branch (`bn3`) scales by
  `_RESIDUAL_SCALE` instead, so that sixteen residual blocks keep
  activations near 1, as a trained ResNet's are. Each array has its own stream, seeded by `seed` and its name, so
  the order in which `shapes` lists them does not matter."""
  weights = {}
  for name, shape in shapes.items():
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    values = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    module, leaf = name.rsplit(".", 1)
    batch_norm = module.rsplit(".", 1)[-1].startswith("bn") or module.endswith(
        "downsample.1")
    if name.startswith("lin"):
      values = np.abs(values)
    elif batch_norm and leaf in ("weight", "running_var"):
      values = 1.0 + 0.1 * (np.abs(values) if leaf == "running_var"
                            else values)
      if module.endswith(".bn3") and leaf == "weight":
        values *= _RESIDUAL_SCALE
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


def features(seed: int, count: int = 64, width: int = 16
             ) -> tuple[np.ndarray, np.ndarray]:
  """Two sets of correlated random feature vectors [count, width], float64,
  the second shifted and stretched: the inputs of a reference Fréchet
  distance."""
  rng = np.random.default_rng(seed)
  mixing = rng.normal(size=(width, width))
  real = rng.normal(size=(count, width)) @ mixing
  fake = 1.3 * rng.normal(size=(count, width)) @ mixing + 0.5
  return real, fake


def reference(file_name: str) -> dict[str, np.ndarray]:
  """The arrays of a reference file in FIXTURES."""
  with np.load(FIXTURES / file_name) as saved:
    return {name: saved[name] for name in saved.files}


def published_shapes(arrays: Mapping[str, np.ndarray]
                     ) -> dict[str, tuple[int, ...]]:
  """The 'shape/NAME' entries of a reference: each published array's shape
  as torch built it."""
  return {name[len("shape/"):]: tuple(int(n) for n in shape)
          for name, shape in arrays.items() if name.startswith("shape/")}
