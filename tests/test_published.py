"""Tests of fetching published weight files, from a server on 127.0.0.1.

Nothing is downloaded from the internet: each test serves files it made (or
the repository's fixtures) over HTTP on the loopback interface (conftest's
`server`) and points a PUBLISHED entry at them.
"""

import hashlib
import io
import pathlib
import socket
import zipfile

import pytest

from spg_jax.pretrained import published

_REPO = pathlib.Path(__file__).resolve().parents[1]
_HEADS = _REPO / "tests" / "fixtures" / "torch" / "lpips_v0.1_alex.pth"


def _publish(monkeypatch, name, **fields):
  monkeypatch.setitem(published.PUBLISHED, name,
                      published.PublishedFile(what=f"the {name} file",
                                              **fields))


def test_a_download_is_checked_kept_and_not_fetched_again(
    tmp_path, server, monkeypatch):
  served, base, requests = server
  data = b"weights" * 1000
  (served / "net-abc.pth").write_bytes(data)
  digest = hashlib.sha256(data).hexdigest()
  _publish(monkeypatch, "net", file_name="net-abc.pth",
           url=f"{base}/net-abc.pth", sha256=digest[:8])
  cache = tmp_path / "cache"
  path = published.fetch("net", cache)
  assert pathlib.Path(path) == cache / "net-abc.pth"
  assert path.read_bytes() == data
  assert requests == ["/net-abc.pth"]
  (served / "net-abc.pth").unlink()  # the cache serves it from now on
  assert published.fetch("net", cache).read_bytes() == data
  assert requests == ["/net-abc.pth"]
  assert sorted(p.name for p in cache.iterdir()) == ["net-abc.pth"]


def test_a_download_that_fails_its_check_is_not_kept(
    tmp_path, server, monkeypatch):
  served, base, _ = server
  (served / "net.pth").write_bytes(b"truncated")
  _publish(monkeypatch, "net", file_name="net.pth", url=f"{base}/net.pth",
           sha256="0123abcd")
  cache = tmp_path / "cache"
  digest = hashlib.sha256(b"truncated").hexdigest()
  with pytest.raises(published.WeightsUnavailableError,
                     match=f"served 9 bytes whose SHA-256 is {digest}, not"
                     " the published 0123abcd"):
    published.fetch("net", cache)
  assert not cache.exists() or not list(cache.iterdir())


def test_a_copy_in_the_cache_is_checked_too(tmp_path, monkeypatch):
  cache = tmp_path / "cache"
  cache.mkdir()
  (cache / "net.pth").write_bytes(b"not the weights")
  _publish(monkeypatch, "net", file_name="net.pth",
           url="http://127.0.0.1:9/net.pth", sha256="0123abcd")
  with pytest.raises(published.WeightsUnavailableError,
                     match=f"{cache / 'net.pth'} is not the net file: its"
                     " SHA-256 does not begin with the published 0123abcd."
                     " Remove it"):
    published.fetch("net", cache)


def test_without_a_server_the_error_says_where_to_put_a_copy(
    tmp_path, monkeypatch):
  with socket.socket() as unused:
    unused.bind(("127.0.0.1", 0))
    port = unused.getsockname()[1]
  url = f"http://127.0.0.1:{port}/lpips.whl"
  _publish(monkeypatch, "heads", file_name="heads.pth", url=url,
           sha256="00", member="lpips/weights/v0.1/alex.pth")
  cache = tmp_path / "cache"
  with pytest.raises(published.WeightsUnavailableError) as error:
    published.fetch("heads", cache)
  message = str(error.value)
  assert f"Could not download the heads file from {url}" in message
  assert "take lpips/weights/v0.1/alex.pth out of it" in message
  assert f"put the file at {cache / 'heads.pth'}" in message


def test_a_file_inside_a_wheel_is_taken_out_of_it(
    tmp_path, server, monkeypatch):
  served, base, _ = server
  wheel = io.BytesIO()
  with zipfile.ZipFile(wheel, "w") as archive:
    archive.writestr("lpips/__init__.py", "")
    archive.write(_HEADS, "lpips/weights/v0.1/alex.pth")
  (served / "lpips.whl").write_bytes(wheel.getvalue())
  _publish(monkeypatch, "heads", file_name="heads.pth",
           url=f"{base}/lpips.whl",
           sha256=hashlib.sha256(wheel.getvalue()).hexdigest(),
           member="lpips/weights/v0.1/alex.pth")
  path = published.fetch("heads", tmp_path / "cache")
  assert path.read_bytes() == _HEADS.read_bytes()


def test_the_lpips_fixture_is_the_published_wheels_member():
  """The heads fixture is byte for byte the member of the wheel that PyPI
  publishes under the entry's SHA-256 (fd537af5...), whose member's
  SHA-256 was taken once from that wheel."""
  entry = published.PUBLISHED["lpips_alex"]
  assert entry.member == "lpips/weights/v0.1/alex.pth"
  assert entry.url.endswith("lpips-0.1.4-py3-none-any.whl")
  assert entry.sha256.startswith("fd537af5")
  assert hashlib.sha256(_HEADS.read_bytes()).hexdigest() == (
      "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"
  )
