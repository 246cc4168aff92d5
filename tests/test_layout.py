"""The package's layout: every module imports, and the docs point at real paths."""

import ast
import importlib
import pathlib
import pkgutil
import re

import pytest

import spg_jax

_REPO = pathlib.Path(__file__).resolve().parents[1]
_DOCS = ("README.md", "BENCHMARKS.md", "data/README.md", "docs/design.md")


def _module_names() -> list[str]:
  return sorted(
      info.name
      for info in pkgutil.walk_packages(spg_jax.__path__, prefix="spg_jax.")
  )


@pytest.mark.parametrize("name", _module_names())
def test_every_module_imports(name):
  importlib.import_module(name)


def _console_scripts() -> dict[str, str]:
  """`name = module:function` entries of setup.py, parsed without running it."""
  tree = ast.parse((_REPO / "setup.py").read_text())
  for node in ast.walk(tree):
    if isinstance(node, ast.keyword) and node.arg == "entry_points":
      entries = ast.literal_eval(node.value)["console_scripts"]
      return dict(
          (part.strip() for part in entry.split("=")) for entry in entries
      )
  raise AssertionError("setup.py declares no entry_points")


def test_every_command_names_a_function_that_exists():
  scripts = _console_scripts()
  assert "spg-inpaint" in scripts and "spg-benchmark" in scripts
  for target in scripts.values():
    module_name, function = target.split(":")
    assert callable(getattr(importlib.import_module(module_name), function))


def _doc_text() -> str:
  return "\n".join((_REPO / name).read_text() for name in _DOCS)


def test_modules_the_docs_run_exist():
  modules = set(re.findall(r"python -m ((?:spg_jax|benchmarks)[\w.]*)", _doc_text()))
  assert "spg_jax.main" in modules
  for name in modules:
    assert importlib.util.find_spec(name) is not None, name


def test_paths_the_docs_name_exist():
  paths = set(
      re.findall(
          r"(?<![\w/.])((?:spg_jax|configs|benchmarks|tests|docs|scripts)/"
          r"[\w/.-]*\w)",
          _doc_text(),
      )
  )
  assert "configs/synthetic.py" in paths
  missing = sorted(path for path in paths if not (_REPO / path).exists())
  assert not missing


def test_nothing_points_outside_the_repository():
  """Every project document (an upper-case Markdown name, as README.md) that a
  source or doc names is in the repository, and no path climbs out of it."""
  present = {path.name for path in _REPO.glob("**/*.md")}
  sources = list(_REPO.glob("**/*.py")) + list(_REPO.glob("**/*.md"))
  for path in sources:
    if ".git" in path.parts:
      continue
    text = path.read_text()
    named = set(re.findall(r"\b[A-Z][A-Z_-]*\.md\b", text))
    assert named <= present, (path, named - present)
    assert not re.search(r"(?<![\w.])\.\./\w", text), path
