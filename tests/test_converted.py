"""Tests of `spg-weights`' conversion: published files to checked Flax trees.

The published files are served from 127.0.0.1 (conftest's `server`): a full-size AlexNet written
from seeded weights in torchvision's names (tests/torch_writer.py), and the
real LPIPS heads inside a wheel, as PyPI serves them.
"""

import hashlib
import io
import pathlib
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pytest

from spg_jax.pretrained import alexnet
from spg_jax.pretrained import converted
from spg_jax.pretrained import lpips
from spg_jax.pretrained import published
from spg_jax.pretrained import torch_files

import torch_references
import torch_writer

_REPO = pathlib.Path(__file__).resolve().parents[1]
_HEADS = _REPO / "tests" / "fixtures" / "torch" / "lpips_v0.1_alex.pth"

def _serve_lpips_files(served, base, monkeypatch):
  """Serves a seeded AlexNet and the heads' wheel; points PUBLISHED there."""
  seeded = torch_references.random_weights(alexnet.TORCH_SHAPES, 1)
  torch_writer.save(seeded, served / "alexnet.pth")
  wheel = io.BytesIO()
  with zipfile.ZipFile(wheel, "w") as archive:
    archive.write(_HEADS, "lpips/weights/v0.1/alex.pth")
  (served / "lpips.whl").write_bytes(wheel.getvalue())
  for name, served_name, file_name, member in (
      ("alexnet", "alexnet.pth", "alexnet-owt-7be5be79.pth", None),
      ("lpips_alex", "lpips.whl", "lpips_v0.1_alex.pth",
       "lpips/weights/v0.1/alex.pth")):
    data = (served / served_name).read_bytes()
    monkeypatch.setitem(published.PUBLISHED, name, published.PublishedFile(
        file_name, f"{base}/{served_name}", hashlib.sha256(data).hexdigest(),
        f"the {name} file", member))
  return seeded


def test_lpips_is_fetched_converted_kept_and_loaded(tmp_path, server,
                                                    monkeypatch):
  served, base, _ = server
  seeded = _serve_lpips_files(served, base, monkeypatch)
  cache = tmp_path / "cache"
  path = converted.convert("lpips", cache)
  assert pathlib.Path(path) == cache / "lpips.msgpack"
  assert sorted(p.name for p in cache.iterdir()) == [
      "alexnet-owt-7be5be79.pth", "lpips.msgpack", "lpips_v0.1_alex.pth"]
  monkeypatch.setenv(published.CACHE_VARIABLE, str(cache))
  loaded = converted.load("lpips")
  expected = lpips.params_from_torch(
      seeded, torch_files.load_state_dict(_HEADS), "seeded", "heads")
  assert jax.tree.structure(loaded) == jax.tree.structure(expected)
  for got, want in zip(jax.tree.leaves(loaded), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(got, want)


def test_a_misshaped_published_file_is_named_and_nothing_converted(
    tmp_path, server, monkeypatch):
  served, base, _ = server
  _serve_lpips_files(served, base, monkeypatch)
  state = torch_references.random_weights(alexnet.TORCH_SHAPES, 1)
  state["features.10.weight"] = state["features.10.weight"][:128]
  torch_writer.save(state, served / "alexnet.pth")
  data = (served / "alexnet.pth").read_bytes()
  monkeypatch.setitem(published.PUBLISHED, "alexnet", published.PublishedFile(
      "alexnet-owt-7be5be79.pth", f"{base}/alexnet.pth",
      hashlib.sha256(data).hexdigest(), "the alexnet file"))
  cache = tmp_path / "cache"
  with pytest.raises(ValueError,
                     match=r"alexnet-owt-7be5be79.pth is not the expected"
                     r" weights: mis-shaped features.10.weight: \(128, 256,"
                     r" 3, 3\) in the file, \(256, 256, 3, 3\) expected"):
    converted.convert("lpips", cache)
  assert not (cache / "lpips.msgpack").exists()


def test_the_command_refuses_an_unknown_name_naming_the_choices(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "spg_jax.pretrained.converted",
       "--names=lpips,alexnet", f"--cache_dir={tmp_path}"],
      cwd=_REPO, capture_output=True, text=True, check=False)
  assert result.returncode != 0
  assert ("--names: unknown ['alexnet']; choose from lpips, vgg19,"
          in result.stderr)
