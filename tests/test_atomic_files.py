"""Tests of atomic file writes."""

from spg_jax.runtime import atomic_files


def test_write_replaces_an_existing_file_and_leaves_no_partial(tmp_path):
  path = tmp_path / "sub" / "metrics.json"
  atomic_files.write_text(path, "first")
  atomic_files.write_text(path, "second")
  assert path.read_text() == "second"
  assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]
