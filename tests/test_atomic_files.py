"""Tests of atomic file writes."""

import os
import stat

from spg_jax.runtime import atomic_files


def test_write_replaces_an_existing_file_and_leaves_no_partial(tmp_path):
  path = tmp_path / "sub" / "metrics.json"
  atomic_files.write_text(path, "first")
  atomic_files.write_text(path, "second")
  assert path.read_text() == "second"
  assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path):
  outside = tmp_path / "outside.png"
  outside.write_bytes(b"keep")
  out_dir = tmp_path / "out"
  out_dir.mkdir()
  (out_dir / "x.png").symlink_to(outside)
  atomic_files.write_bytes(out_dir / "x.png", b"new")
  assert outside.read_bytes() == b"keep"
  assert not (out_dir / "x.png").is_symlink()
  assert (out_dir / "x.png").read_bytes() == b"new"


def test_a_link_planted_at_the_old_temporary_name_is_not_followed(tmp_path):
  """The temporary file's name once was `.NAME.partial-PID`, which anyone
  who can write to the folder could guess and point elsewhere."""
  outside = tmp_path / "outside.png"
  outside.write_bytes(b"keep")
  out_dir = tmp_path / "out"
  out_dir.mkdir()
  (out_dir / f".x.png.partial-{os.getpid()}").symlink_to(outside)
  atomic_files.write_bytes(out_dir / "x.png", b"new")
  assert outside.read_bytes() == b"keep"
  assert (out_dir / "x.png").read_bytes() == b"new"


def test_a_written_file_has_the_umasks_mode(tmp_path):
  umask = os.umask(0o022)
  try:
    atomic_files.write_bytes(tmp_path / "x.png", b"new")
  finally:
    os.umask(umask)
  assert stat.S_IMODE((tmp_path / "x.png").stat().st_mode) == 0o644
