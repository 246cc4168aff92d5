"""Executes notebooks/demo.ipynb headless, with the tiny variant."""

import pathlib
import re

import nbclient
import nbformat

_NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "demo.ipynb"


def test_demo_notebook_runs_and_shows_results(tmp_path, scenes_data_dir):
  notebook = nbformat.read(_NOTEBOOK, as_version=4)
  parameters = [cell for cell in notebook.cells
                if "parameters" in cell.metadata.get("tags", [])]
  assert len(parameters) == 1
  parameters[0].source += (
      f'\nWORKDIR = "{tmp_path / "run"}"\nVARIANT = "tiny"'
      f'\nDATA_NAME = "synthetic_scenes/s32"\nDATA_DIR = "{scenes_data_dir}"'
  )
  nbclient.NotebookClient(
      notebook, timeout=600, kernel_name="python3",
      resources={"metadata": {"path": str(_NOTEBOOK.parent)}},
  ).execute()
  outputs = [output for cell in notebook.cells if cell.cell_type == "code"
             for output in cell.outputs]
  assert not [output for output in outputs if output.output_type == "error"]
  images = [output for output in outputs if "image/png" in output.get("data", {})]
  assert len(images) == 2  # The completion, then the edited render.
  text = "".join(output.get("text", "") for output in outputs)
  assert "input with hole | predicted labels | output | original" in text
  assert "hole labelled 'nature': labels | output" in text
  changed = re.search(r"The edit changed (\d+)% of the hole's pixels", text)
  assert changed and int(changed.group(1)) > 0, text
  assert (tmp_path / "run" / "eval" / "metrics.json").exists()
