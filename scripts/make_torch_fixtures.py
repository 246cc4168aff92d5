"""Writes the PyTorch fixtures that tests/test_torch_files.py reads.

Run once, where torch is installed (it is not a dependency of spg_jax, and
CI never runs this):

  pip install torch numpy
  python scripts/make_torch_fixtures.py

It writes to tests/fixtures/torch/:
  tensors_zip.pth     torch.save of a state dict covering every storage type
                      the reader maps, a parameter, a 0-d tensor, a
                      transposed view and two tensors sharing one storage
                      at different offsets (torch's zip layout);
  tensors_legacy.pth  the same state dict in torch's legacy layout;
  tensors.npz         the tensors as torch.load gives them back, as NumPy
                      (bfloat16 as its raw uint16 bits);
  lpips_v0.1_alex.npz torch.load of lpips_v0.1_alex.pth, LPIPS v0.1's linear
                      heads on AlexNet, which this folder holds as the lpips
                      0.1.4 wheel ships it (lpips/weights/v0.1/alex.pth);
  lpips_reference.npz the lpips package's LPIPS (v0.1, AlexNet) with weights
                      from tests/torch_references.py in torchvision's and
                      lpips' names and shapes: every array's shape, the five
                      ReLU outputs of the first image pair's first images
                      (NCHW) and the distances of every pair.
Every value comes from a fixed NumPy seed, so a rerun writes the same
tensors (the .pth files' storage keys may differ). The LPIPS reference also
needs `pip install lpips torchvision scipy`.
"""

import pathlib
import sys

import numpy as np
import torch

_TESTS = pathlib.Path(__file__).resolve().parents[1] / "tests"
_FIXTURES = _TESTS / "fixtures" / "torch"
sys.path.insert(0, str(_TESTS))
import torch_references  # pylint: disable=g-import-not-at-top,wrong-import-position

# The seed of the LPIPS reference's weights and of its images.
LPIPS_SEED = 1


def _state_dict() -> dict[str, torch.Tensor]:
  rng = np.random.default_rng(0)
  base = torch.from_numpy(rng.normal(size=10).astype(np.float32))
  return {
      "conv.weight": torch.from_numpy(
          rng.normal(size=(4, 3, 3, 3)).astype(np.float32)),
      "conv.bias": torch.nn.Parameter(torch.from_numpy(
          rng.normal(size=4).astype(np.float32))),
      "float64": torch.from_numpy(rng.normal(size=(2, 2))),
      "float16": torch.from_numpy(rng.normal(size=5).astype(np.float16)),
      "bfloat16": torch.from_numpy(
          rng.normal(size=(2, 3)).astype(np.float32)).to(torch.bfloat16),
      "int64": torch.from_numpy(rng.integers(-9, 9, size=3)),
      "int32": torch.from_numpy(rng.integers(-9, 9, size=3).astype(np.int32)),
      "int16": torch.from_numpy(rng.integers(-9, 9, size=3).astype(np.int16)),
      "int8": torch.from_numpy(rng.integers(-9, 9, size=3).astype(np.int8)),
      "uint8": torch.from_numpy(rng.integers(0, 255, size=3).astype(np.uint8)),
      "bool": torch.from_numpy(rng.integers(0, 2, size=4).astype(bool)),
      "num_batches_tracked": torch.tensor(7),
      "transposed": torch.arange(12.0).reshape(3, 4).t(),
      "shared.whole": base,
      "shared.middle": base[3:7],
      "empty": torch.zeros(0, 3),
  }


def _as_numpy(tensor: torch.Tensor) -> np.ndarray:
  tensor = tensor.detach()
  if tensor.dtype == torch.bfloat16:
    return tensor.view(torch.int16).numpy().view(np.uint16)
  return tensor.numpy()


def _published_name(name: str) -> str | None:
  """The torchvision or heads-file name of an lpips.LPIPS state-dict entry
  (None for its fixed input scaling); `lins.K` is the module `linK` again."""
  module, leaf = name.rsplit(".", 1)
  if module.startswith("scaling_layer"):
    return None
  if module.startswith("net.slice"):
    return f"features.{module.rsplit('.', 1)[1]}.{leaf}"
  if module.startswith("lins."):
    return f"lin{module.split('.')[1]}.model.1.{leaf}"
  return name


def _lpips_reference() -> dict[str, np.ndarray]:
  """The lpips package's outputs with seeded weights, and their shapes."""
  import lpips  # pylint: disable=g-import-not-at-top

  model = lpips.LPIPS(net="alex", version="0.1", pretrained=False,
                      pnet_rand=True, verbose=False).eval()
  state = model.state_dict()
  published = {_published_name(name): tuple(tensor.shape)
               for name, tensor in state.items()
               if _published_name(name) is not None}
  weights = torch_references.random_weights(published, LPIPS_SEED)
  model.load_state_dict({
      name: tensor if _published_name(name) is None
      else torch.from_numpy(weights[_published_name(name)])
      for name, tensor in state.items()
  })
  first, second = torch_references.images(LPIPS_SEED)
  to_nchw = lambda array: torch.from_numpy(array).permute(0, 3, 1, 2)
  with torch.no_grad():
    distances = model(to_nchw(first), to_nchw(second)).reshape(-1)
    taps = model.net(model.scaling_layer(to_nchw(first[:1])))
  return {
      "distances": distances.numpy(),
      **{f"relu{index + 1}": tap.numpy() for index, tap in enumerate(taps)},
      **{f"shape/{name}": np.asarray(shape)
         for name, shape in published.items()},
  }


def main() -> None:
  state = _state_dict()
  torch.save(state, _FIXTURES / "tensors_zip.pth")
  torch.save(state, _FIXTURES / "tensors_legacy.pth",
             _use_new_zipfile_serialization=False)
  loaded = torch.load(_FIXTURES / "tensors_zip.pth", weights_only=True)
  np.savez(_FIXTURES / "tensors.npz",
           **{name: _as_numpy(tensor) for name, tensor in loaded.items()})
  heads = torch.load(_FIXTURES / "lpips_v0.1_alex.pth", map_location="cpu",
                     weights_only=True)
  np.savez(_FIXTURES / "lpips_v0.1_alex.npz",
           **{name: _as_numpy(tensor) for name, tensor in heads.items()})
  np.savez(_FIXTURES / "lpips_reference.npz", **_lpips_reference())
  print(f"Wrote the fixtures to {_FIXTURES}.")


if __name__ == "__main__":
  main()
