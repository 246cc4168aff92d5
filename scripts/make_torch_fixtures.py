"""Writes the PyTorch fixtures that tests/test_torch_files.py reads.

Run once, where torch is installed (it is not a dependency of spg_jax, and
CI never runs this):

  pip install torch numpy
  python scripts/make_torch_fixtures.py [tensors lpips vgg19 resnet50 inception_fid]

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
                      (NCHW) and the distances of every pair;
  vgg19_reference.npz torchvision's VGG19 features with seeded weights:
                      every array's shape, a sample of every ReLU's output
                      for the first image (NCHW) and each ReLU's mean
                      absolute difference between the two image batches;
  resnet50_reference.npz
                      torchvision's ResNet-50 with seeded weights, its last
                      stage dilated as the segmenter's backbone: every
                      array's shape, a sample of the first and last
                      stages' outputs for the first image (NCHW) and each
                      output's mean over the image batch;
  inception_fid_reference.npz
                      pytorch-fid's FID Inception with seeded weights:
                      every array's shape, the pool3 features of the first
                      image batch, and pytorch-fid's Fréchet distance
                      between two seeded feature sets.
Every value comes from a fixed NumPy seed, so a rerun writes the same
tensors (the .pth files' storage keys may differ). The references also need
`pip install lpips pytorch-fid torchvision scipy`.
"""

import pathlib
import sys

import numpy as np
import torch

_TESTS = pathlib.Path(__file__).resolve().parents[1] / "tests"
_FIXTURES = _TESTS / "fixtures" / "torch"
sys.path.insert(0, str(_TESTS))
import torch_references  # pylint: disable=g-import-not-at-top,wrong-import-position

# The seeds of each reference's weights and images.
LPIPS_SEED = 1
VGG_SEED = 2
INCEPTION_SEED = 3
RESNET_SEED = 4


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


def _seeded(shapes: dict[str, tuple[int, ...]], seed: int
            ) -> dict[str, torch.Tensor]:
  return {name: torch.from_numpy(array) for name, array in
          torch_references.random_weights(shapes, seed).items()}


def _shapes(state: dict[str, torch.Tensor], keep) -> dict[str, tuple]:
  return {name: tuple(tensor.shape) for name, tensor in state.items()
          if keep(name)}


def _nchw(array: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(array).permute(0, 3, 1, 2)


def _vgg_reference() -> dict[str, np.ndarray]:
  """torchvision's VGG19 features with seeded weights: every ReLU's output
  for the first image (every 16th channel, 6x8 positions at most), and the
  mean absolute difference of the two image batches' outputs per ReLU."""
  import torchvision  # pylint: disable=g-import-not-at-top

  model = torchvision.models.vgg19(weights=None).eval()
  shapes = _shapes(model.state_dict(), lambda name: name.startswith("features"))
  model.features.load_state_dict(
      {name[len("features."):]: tensor
       for name, tensor in _seeded(shapes, VGG_SEED).items()})
  mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
  std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
  first, second = (((_nchw(batch) + 1) / 2 - mean) / std
                   for batch in torch_references.images(VGG_SEED))
  outputs = {}
  block, layer = 1, 0
  with torch.no_grad():
    for module in model.features:
      first, second = module(first), module(second)
      if isinstance(module, torch.nn.MaxPool2d):
        block, layer = block + 1, 0
      elif isinstance(module, torch.nn.ReLU):
        layer += 1
        name = f"relu{block}_{layer}"
        step = max(1, first.shape[2] // 6)
        outputs[name] = first[0, ::16, ::step, ::step].numpy()
        outputs[f"l1/{name}"] = np.asarray(
            torch.mean(torch.abs(first - second)).item())
  return {**outputs, **{f"shape/{name}": np.asarray(shape)
                        for name, shape in shapes.items()}}


def _inception_reference() -> dict[str, np.ndarray]:
  """pytorch-fid's InceptionV3 (FID weights' layout) with seeded weights:
  pool3 features of the first image batch in [0, 1], and the Fréchet
  distance pytorch-fid computes between two seeded feature sets."""
  from pytorch_fid import fid_score  # pylint: disable=g-import-not-at-top
  from pytorch_fid import inception  # pylint: disable=g-import-not-at-top

  shapes = {}

  def seeded_file(*unused_args, **unused_kwargs):
    # Where pytorch-fid would download its weights: the layout it builds,
    # filled from the seed.
    layout = _fid_inception_layout()
    shapes.update(_shapes(layout, lambda name: not name.startswith("fc")
                          and not name.endswith("num_batches_tracked")))
    state = dict(layout)
    state.update(_seeded(shapes, INCEPTION_SEED))
    return state

  inception.load_state_dict_from_url = seeded_file
  model = inception.InceptionV3([3]).eval()
  first, _ = torch_references.images(INCEPTION_SEED)
  with torch.no_grad():
    pool3 = model((_nchw(first) + 1) / 2)[0].reshape(len(first), -1)
  real, fake = torch_references.features(INCEPTION_SEED)
  statistics = [(batch.mean(axis=0), np.cov(batch, rowvar=False))
                for batch in (real, fake)]
  distance = fid_score.calculate_frechet_distance(*statistics[0],
                                                  *statistics[1])
  return {"pool3": pool3.numpy(), "frechet_distance": np.asarray(distance),
          **{f"shape/{name}": np.asarray(shape)
             for name, shape in shapes.items()}}


def _resnet_reference() -> dict[str, np.ndarray]:
  """torchvision's ResNet-50 with seeded weights, its last stage dilated as
  spg_jax's segmenter dilates it (every block at dilation 2, stride 1;
  torchvision's own replace_stride_with_dilation keeps the first block's at
  1): the first and last stages' outputs for the first image (every 16th
  channel) and each output's mean over the whole image batch."""
  import torchvision  # pylint: disable=g-import-not-at-top

  model = torchvision.models.resnet50(
      weights=None, replace_stride_with_dilation=[False, False, True]).eval()
  model.layer4[0].conv2.dilation = (2, 2)
  model.layer4[0].conv2.padding = (2, 2)
  shapes = _shapes(model.state_dict(), lambda name: not name.startswith("fc")
                   and not name.endswith("num_batches_tracked"))
  model.load_state_dict(_seeded(shapes, RESNET_SEED), strict=False)
  mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
  std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
  first, _ = torch_references.images(RESNET_SEED)
  with torch.no_grad():
    x = ((_nchw(first) + 1) / 2 - mean) / std
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    stage1 = model.layer1(x)
    stage4 = model.layer4(model.layer3(model.layer2(stage1)))
  return {"stage1": stage1[0, ::16].numpy(), "stage4": stage4[0, ::16].numpy(),
          "mean/stage1": np.asarray(stage1.mean().item()),
          "mean/stage4": np.asarray(stage4.mean().item()),
          **{f"shape/{name}": np.asarray(shape)
             for name, shape in shapes.items()}}


def _fid_inception_layout() -> dict[str, torch.Tensor]:
  """The state dict of pytorch-fid's FID Inception before its weights."""
  from pytorch_fid import inception  # pylint: disable=g-import-not-at-top

  model = inception._inception_v3(  # pylint: disable=protected-access
      num_classes=1008, aux_logits=False, weights=None)
  for name, block in (("Mixed_5b", inception.FIDInceptionA(192, 32)),
                      ("Mixed_5c", inception.FIDInceptionA(256, 64)),
                      ("Mixed_5d", inception.FIDInceptionA(288, 64)),
                      ("Mixed_6b", inception.FIDInceptionC(768, 128)),
                      ("Mixed_6c", inception.FIDInceptionC(768, 160)),
                      ("Mixed_6d", inception.FIDInceptionC(768, 160)),
                      ("Mixed_6e", inception.FIDInceptionC(768, 192)),
                      ("Mixed_7b", inception.FIDInceptionE_1(1280)),
                      ("Mixed_7c", inception.FIDInceptionE_2(2048))):
    setattr(model, name, block)
  return model.state_dict()


def _write_tensor_files() -> None:
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


# What each argument writes; no argument writes all.
_WRITERS = {
    "tensors": _write_tensor_files,
    "lpips": lambda: np.savez(_FIXTURES / "lpips_reference.npz",
                              **_lpips_reference()),
    "vgg19": lambda: np.savez(_FIXTURES / "vgg19_reference.npz",
                              **_vgg_reference()),
    "resnet50": lambda: np.savez(_FIXTURES / "resnet50_reference.npz",
                                 **_resnet_reference()),
    "inception_fid": lambda: np.savez(
        _FIXTURES / "inception_fid_reference.npz", **_inception_reference()),
}


def main() -> None:
  for name in sys.argv[1:] or _WRITERS:
    _WRITERS[name]()
    print(f"Wrote the {name} fixtures to {_FIXTURES}.")


if __name__ == "__main__":
  main()
