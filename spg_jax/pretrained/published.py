"""The published weight files, fetched from their official addresses, checked.

`fetch` (which `spg-weights`, in `converted`, runs for each network's files)
downloads a file of `PUBLISHED` from its official address into the cache
(a folder, default `$SPG_JAX_WEIGHTS` or ~/.cache/spg_jax/weights; a
`gs://` path works on TPU VMs), its SHA-256 checked against the published
value, and kept under its published file name; one already there (a copy
put by hand, say) is checked the same way and not downloaded again.
torchvision and pytorch-fid publish the first hex digits of each file's
SHA-256 in its name; PyPI publishes the whole SHA-256 of the lpips wheel,
from which LPIPS' heads are taken. A download that fails its check is never
kept. Without internet, the error names the file, its address, and where to
put a copy by hand.
"""

import dataclasses
import hashlib
import io
import os
import urllib.request
import zipfile

from etils import epath

from spg_jax.runtime import atomic_files

# The environment variable that moves the default cache.
CACHE_VARIABLE = "SPG_JAX_WEIGHTS"
_DEFAULT_CACHE = "~/.cache/spg_jax/weights"
# Seconds to wait for a server before reporting it unreachable.
_TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class PublishedFile:
  """A weight file as its authors publish it.

  Attributes:
    file_name: the name it is kept under in the cache.
    url: its official address.
    sha256: the published SHA-256 of what `url` serves, whole or its first
      hex digits.
    what: what the file holds, for messages.
    member: for an archive (a wheel), the path of the file inside it.
  """

  file_name: str
  url: str
  sha256: str
  what: str
  member: str | None = None


PUBLISHED = {
    "alexnet": PublishedFile(
        "alexnet-owt-7be5be79.pth",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "7be5be79",
        "torchvision's ImageNet AlexNet (LPIPS' feature network)",
    ),
    "lpips_alex": PublishedFile(
        "lpips_v0.1_alex.pth",
        "https://files.pythonhosted.org/packages/9b/13/"
        "1df50c7925d9d2746702719f40e864f51ed66f307b20ad32392f1ad2bb87/"
        "lpips-0.1.4-py3-none-any.whl",
        "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e",
        "LPIPS v0.1's linear heads on AlexNet, from the lpips 0.1.4 wheel",
        member="lpips/weights/v0.1/alex.pth",
    ),
    "vgg19": PublishedFile(
        "vgg19-dcbb9e9d.pth",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        "dcbb9e9d",
        "torchvision's ImageNet VGG19 (the VGG perceptual loss)",
    ),
    "resnet50": PublishedFile(
        "resnet50-0676ba61.pth",
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
        "0676ba61",
        "torchvision's ImageNet ResNet-50 (the segmenter's backbone)",
    ),
    "inception_fid": PublishedFile(
        "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/"
        "fid_weights/pt_inception-2015-12-05-6726825d.pth",
        "6726825d",
        "the FID Inception of pytorch-fid (TensorFlow's 2015-12-05 graph)",
    ),
}


class WeightsUnavailableError(RuntimeError):
  """A published file could not be fetched, or failed its check."""


def default_cache_dir() -> epath.Path:
  """`$SPG_JAX_WEIGHTS`, or ~/.cache/spg_jax/weights."""
  return epath.Path(
      os.path.expanduser(os.environ.get(CACHE_VARIABLE, _DEFAULT_CACHE)))


def _matches(data: bytes, sha256: str) -> bool:
  return hashlib.sha256(data).hexdigest().startswith(sha256.lower())


def _download(published: PublishedFile, target: epath.Path) -> bytes:
  """What `published.url` serves, or an error saying how to do without."""
  try:
    with urllib.request.urlopen(published.url,
                                timeout=_TIMEOUT_SECONDS) as response:
      return response.read()
  except OSError as error:  # urllib.error.URLError among them
    raise WeightsUnavailableError(
        f"Could not download {published.what} from {published.url}"
        f" ({error}). On a machine without internet, download that address"
        " elsewhere"
        + (f", take {published.member} out of it," if published.member
           else "")
        + f" and put the file at {target}."
    ) from None


def fetch(name: str, cache_dir: epath.PathLike | None = None) -> epath.Path:
  """The path of published file `name` in the cache, fetched if need be.

  Raises:
    KeyError: `name` is not in `PUBLISHED`.
    WeightsUnavailableError: the file cannot be downloaded, what was
      downloaded does not match the published SHA-256 (nothing is kept),
      or the copy in the cache does not.
  """
  if name not in PUBLISHED:
    raise KeyError(f"No published file {name!r}; known: {sorted(PUBLISHED)}.")
  published = PUBLISHED[name]
  cache = epath.Path(cache_dir) if cache_dir else default_cache_dir()
  target = cache / published.file_name
  if target.exists():
    # A member taken out of an archive has no published hash of its own.
    if published.member is None and not _matches(target.read_bytes(),
                                                 published.sha256):
      raise WeightsUnavailableError(
          f"{target} is not {published.what}: its SHA-256 does not begin"
          f" with the published {published.sha256}. Remove it to download"
          f" it again from {published.url}."
      )
    return target
  data = _download(published, target)
  if not _matches(data, published.sha256):
    raise WeightsUnavailableError(
        f"{published.url} served {len(data)} bytes whose SHA-256 is"
        f" {hashlib.sha256(data).hexdigest()}, not the published"
        f" {published.sha256}: a truncated or altered download. Nothing was"
        " kept; try again."
    )
  if published.member:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
      data = archive.read(published.member)
  atomic_files.write_bytes(target, data)
  return target
