"""docs/errors.md: every row names a real test that asserts its message.

Each row of the page's table names a test (`tests/FILE.py::TEST_NAME`) and
an excerpt of the message that test asserts. The checks here read text
only: the test file exists, defines the test, and holds the excerpt
(verbatim, or once the backslashes that escape regex characters in a
`match=` pattern are taken out).
"""

import dataclasses
import functools
import pathlib
import re

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]
_DOC = _REPO / "docs" / "errors.md"
_COLUMNS = ("where", "bad input", "message (excerpt)", "test")
_MIN_ROWS = 25
_MIN_EXCERPT, _MAX_EXCERPT = 20, 90
_SEPARATOR = re.compile(r"^[\s|:-]+$")


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of the table.

  Attributes:
    line: the row's line number in docs/errors.md, from 1.
    where: the part of spg_jax that refuses the input.
    bad_input: the bad input, in words.
    excerpt: a verbatim excerpt of the message.
    test_file: the test file, relative to the repository root.
    test_name: the test function's name.
  """

  line: int
  where: str
  bad_input: str
  excerpt: str
  test_file: str
  test_name: str

  @property
  def test(self) -> str:
    return f"{self.test_file}::{self.test_name}"


def _unquote(cell: str) -> str:
  """A cell's text without the code span around it, if it has one."""
  cell = cell.strip()
  if len(cell) >= 2 and cell.startswith("`") and cell.endswith("`"):
    return cell[1:-1]
  return cell


def _split(line: str) -> list[str]:
  return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _parse(text: str) -> list[Row]:
  """The rows of the first table whose header is `_COLUMNS`.

  Raises:
    ValueError: the page has no such table, or a row has another number of
      cells or a test not written `FILE.py::NAME`.
  """
  lines = text.splitlines()
  for start, line in enumerate(lines):
    if line.lstrip().startswith("|") and tuple(_split(line)) == _COLUMNS:
      break
  else:
    raise ValueError(f"{_DOC} has no table with the columns {_COLUMNS}.")
  rows = []
  for number, line in enumerate(lines[start + 1:], start + 2):
    if not line.lstrip().startswith("|"):
      break
    if _SEPARATOR.match(line):
      continue
    cells = [_unquote(cell) for cell in _split(line)]
    if len(cells) != len(_COLUMNS):
      raise ValueError(
          f"{_DOC}:{number} has {len(cells)} cells, not {len(_COLUMNS)}.")
    where, bad_input, excerpt, test = cells
    test_file, separator, test_name = test.partition("::")
    if not separator or not test_file.endswith(".py") or not test_name:
      raise ValueError(
          f"{_DOC}:{number} names the test {test!r}, not FILE.py::NAME.")
    rows.append(Row(number, where, bad_input, excerpt, test_file, test_name))
  return rows


def _rows() -> list[Row]:
  return _parse(_DOC.read_text())


def _row_id(row: Row) -> str:
  return f"line{row.line}-{row.test_name}-{row.excerpt}"


@functools.cache
def _source(test_file: str) -> str:
  return (_REPO / test_file).read_text()


_ROWS = _rows()


def test_the_table_has_enough_rows():
  assert len(_ROWS) >= _MIN_ROWS, f"{_DOC} lists {len(_ROWS)} rows"


def test_no_two_rows_name_the_same_test_and_excerpt():
  seen = {}
  for row in _ROWS:
    key = (row.test, row.excerpt)
    assert key not in seen, (
        f"{_DOC}:{row.line} repeats line {seen[key]}: {key}")
    seen[key] = row.line


@pytest.mark.parametrize("row", _ROWS, ids=_row_id)
def test_each_excerpt_is_plain_text_of_a_sensible_length(row):
  assert _MIN_EXCERPT <= len(row.excerpt) <= _MAX_EXCERPT, len(row.excerpt)
  for character in ("`", "\\", "|"):
    assert character not in row.excerpt
  assert ".*" not in row.excerpt


@pytest.mark.parametrize("row", _ROWS, ids=_row_id)
def test_each_row_names_a_test_that_exists(row):
  path = _REPO / row.test_file
  assert path.is_file(), f"{_DOC}:{row.line}: no file {row.test_file}"
  assert f"def {row.test_name}(" in _source(row.test_file), (
      f"{_DOC}:{row.line}: {row.test_file} defines no {row.test_name}")


@pytest.mark.parametrize("row", _ROWS, ids=_row_id)
def test_each_excerpt_is_in_its_tests_source(row):
  path = _REPO / row.test_file
  assert path.is_file(), f"{_DOC}:{row.line}: no file {row.test_file}"
  source = _source(row.test_file)
  assert row.excerpt in source or row.excerpt in source.replace("\\", ""), (
      f"{_DOC}:{row.line}: {row.test_file} does not hold {row.excerpt!r}")


def test_the_parser_reads_cells_and_refuses_a_short_row():
  text = (
      "# Title\n\nIntro.\n\n"
      "| where | bad input | message (excerpt) | test |\n"
      "| --- | --- | --- | --- |\n"
      "| config | a bad key | `Unknown config variant 'huge'` |"
      " `tests/test_main.py::test_unknown_config_variant_is_refused` |\n"
      "\nAfter the table.\n"
  )
  (row,) = _parse(text)
  assert row == Row(7, "config", "a bad key", "Unknown config variant 'huge'",
                    "tests/test_main.py",
                    "test_unknown_config_variant_is_refused")
  with pytest.raises(ValueError, match="has 3 cells, not 4"):
    _parse(text.replace("| config |", "|"))
