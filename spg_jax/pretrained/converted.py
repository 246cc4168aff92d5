r"""Pretrained networks converted once to Flax parameter trees, and loaded.

  spg-weights [--names=lpips,vgg19,resnet50,inception_fid] [--cache_dir=DIR]

(`python -m spg_jax.pretrained.converted` is the same command.) Each network of `NETWORKS` is built from one or more published PyTorch
files (`published.PUBLISHED`): `convert` fetches them, reads them without
torch, converts them and keeps the parameter tree beside them in the cache
as `<name>.msgpack` (Flax's msgpack serialisation: arrays and dicts only,
nothing that runs code when read). `load` reads such a tree back from the
cache or from a path a config names, and checks it against the network's
layout, so a missing, truncated or foreign file is named before training
or evaluation starts.
"""

from collections.abc import Callable, Sequence
import dataclasses
import sys

from absl import app
from absl import flags
from etils import epath
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from spg_jax.pretrained import alexnet
from spg_jax.pretrained import conversion
from spg_jax.pretrained import inception
from spg_jax.pretrained import lpips
from spg_jax.pretrained import published
from spg_jax.pretrained import resnet
from spg_jax.pretrained import torch_files
from spg_jax.pretrained import vgg
from spg_jax.runtime import atomic_files
from spg_jax.runtime import commands

Params = dict


@dataclasses.dataclass(frozen=True)
class PretrainedNetwork:
  """A network whose weights are converted from published files.

  Attributes:
    files: its files, names in `published.PUBLISHED`.
    convert: the parameter tree from the files' state dicts and their
      paths (for messages), in the order of `files`.
    layout: the parameter tree's shapes, for checking a converted file.
    what: what it is, for messages.
  """

  files: tuple[str, ...]
  convert: Callable[[Sequence[conversion.StateDict], Sequence[str]], Params]
  layout: Callable[[], Params]
  what: str


def _layout(module, input_shape: Sequence[int], inputs: int = 1) -> Params:
  """The shapes of `module`'s parameters, called on `inputs` arrays of
  `input_shape`."""
  example = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)
  return jax.eval_shape(module.init, jax.random.key(0),
                        *[example] * inputs)["params"]


NETWORKS = {
    "lpips": PretrainedNetwork(
        ("alexnet", "lpips_alex"),
        lambda states, sources: lpips.params_from_torch(*states, *sources),
        lambda: _layout(lpips.LPIPS(), (1, 64, 64, 3), 2),
        "LPIPS v0.1 on AlexNet",
    ),
    "vgg19": PretrainedNetwork(
        ("vgg19",),
        lambda states, sources: vgg.params_from_torch(*states, *sources),
        lambda: _layout(vgg.VGG19Features(taps=vgg.TAPS), (1, 32, 32, 3)),
        "VGG19's features",
    ),
    "resnet50": PretrainedNetwork(
        ("resnet50",),
        lambda states, sources: resnet.params_from_torch(*states, *sources),
        resnet.layout,
        "ImageNet ResNet-50, the segmenter's backbone",
    ),
    "inception_fid": PretrainedNetwork(
        ("inception_fid",),
        lambda states, sources: inception.params_from_torch(*states,
                                                            *sources),
        lambda: _layout(inception.InceptionV3FID(),
                        (1, inception.INPUT_SIZE, inception.INPUT_SIZE, 3)),
        "the FID Inception",
    ),
}


def converted_path(name: str, cache_dir: epath.PathLike | None = None
                   ) -> epath.Path:
  """Where `convert` keeps network `name`'s parameters."""
  cache = epath.Path(cache_dir) if cache_dir else published.default_cache_dir()
  return cache / f"{name}.msgpack"


def _network(name: str) -> PretrainedNetwork:
  if name not in NETWORKS:
    raise KeyError(f"No pretrained network {name!r}; known:"
                   f" {', '.join(NETWORKS)}.")
  return NETWORKS[name]


def convert(name: str, cache_dir: epath.PathLike | None = None) -> epath.Path:
  """Fetches network `name`'s files, converts them, keeps the tree.

  Returns:
    The converted file's path (`converted_path`).

  Raises:
    published.WeightsUnavailableError: a file cannot be fetched.
    torch_files.TorchFileError, torch_files.UnsafeFileError: a file is
      damaged or not a plain state dict.
    conversion.WeightsError: a file lacks arrays or holds other shapes.
  """
  network = _network(name)
  paths = [published.fetch(file, cache_dir) for file in network.files]
  states = [torch_files.load_state_dict(path) for path in paths]
  return save(name, network.convert(states, [str(path) for path in paths]),
              cache_dir)


def save(name: str, params: Params, cache_dir: epath.PathLike | None = None
         ) -> epath.Path:
  """Keeps network `name`'s converted `params` in the cache; returns where."""
  target = converted_path(name, cache_dir)
  atomic_files.write_bytes(target, flax.serialization.msgpack_serialize(params))
  return target


def _differences(layout: Params, params: Params, where: str = ""
                 ) -> list[str]:
  """Each array of `layout` that `params` lacks or holds in another shape,
  and each entry of `params` that `layout` lacks."""
  if not isinstance(params, dict):
    return [f"{where or 'the file'}: not a tree of arrays"]
  found = []
  for key in sorted(set(layout) | set(params)):
    path = f"{where}/{key}" if where else key
    if key not in params:
      found.append(f"{path} missing")
    elif key not in layout:
      found.append(f"{path} unexpected")
    elif isinstance(layout[key], dict):
      found.extend(_differences(layout[key], params[key], path))
    elif np.shape(params[key]) != tuple(layout[key].shape):
      found.append(f"{path}: {np.shape(params[key])} in the file,"
                   f" {tuple(layout[key].shape)} expected")
  return found


def load(name: str, path: str = "") -> Params:
  """Network `name`'s converted parameters, checked against its layout.

  Args:
    name: a key of `NETWORKS`.
    path: the converted file; '' for the cache's (`converted_path`).

  Raises:
    published.WeightsUnavailableError: no file at the path; the message
      says which command makes it.
    conversion.WeightsError: the file is damaged, or holds another
      network's arrays (each array at fault named).
  """
  network = _network(name)
  file = epath.Path(path) if path else converted_path(name)
  if not file.exists():
    raise published.WeightsUnavailableError(
        f"No converted weights of {network.what} at {file}. Make them with"
        f" `spg-weights --names={name}` (it downloads"
        f" {', '.join(published.PUBLISHED[f].file_name for f in network.files)}"
        " from their official addresses; without internet it says where to"
        " put copies), or point the config at a converted file."
    )
  try:
    params = flax.serialization.msgpack_restore(file.read_bytes())
  except (ValueError, TypeError) as error:  # msgpack's errors among them
    raise conversion.WeightsError(
        f"{file} is not a converted weights file ({error}): damaged or cut"
        f" short. Make it again with `spg-weights --names={name}`."
    ) from None
  # Missing arrays first, then mis-shaped, then unexpected ones.
  differences = sorted(_differences(network.layout(), params),
                       key=lambda text: (not text.endswith(" missing"),
                                         text.endswith(" unexpected")))
  if differences:
    raise conversion.WeightsError(
        f"{file} does not hold {network.what}: {'; '.join(differences[:8])}"
        + (f" and {len(differences) - 8} more" if len(differences) > 8
           else "")
        + f". Make it again with `spg-weights --names={name}`."
    )
  return params


def _define_flags(
    flag_values: flags.FlagValues = flags.FLAGS,
) -> commands.FlagHolders:
  """The command's flags, defined in `flag_values` when the command runs."""
  return {
      "names": flags.DEFINE_list(
          "names", list(NETWORKS),
          f"The networks to fetch and convert, of {', '.join(NETWORKS)}.",
          flag_values=flag_values),
      "cache_dir": flags.DEFINE_string(
          "cache_dir", None, "Where to keep the files; default"
          f" ${published.CACHE_VARIABLE} or ~/.cache/spg_jax/weights.",
          flag_values=flag_values),
  }


def main(argv: Sequence[str], holders: commands.FlagHolders) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  names = holders["names"].value
  unknown = [name for name in names if name not in NETWORKS]
  if unknown:
    raise app.UsageError(
        f"--names: unknown {unknown}; choose from {', '.join(NETWORKS)}.")
  failures = []
  for name in names:
    try:
      path = convert(name, holders["cache_dir"].value)
    except (published.WeightsUnavailableError, conversion.WeightsError,
            torch_files.TorchFileError) as error:
      failures.append(f"{name}: {error}")
      print(f"{name}: FAILED", flush=True)
    else:
      print(f"{name}: {path}", flush=True)
  if failures:
    sys.exit("\n".join(failures))


def run() -> None:
  """The command's entry point."""
  commands.run(_define_flags, main)


if __name__ == "__main__":
  run()
