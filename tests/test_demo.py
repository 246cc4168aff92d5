"""Tests of the web demo: its callbacks, and a click-through in Chromium."""

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import gradio as gr
import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright
import pytest

from benchmarks import demo_load
from spg_jax.data import classes
from spg_jax.inference import demo
from spg_jax.inference import inpaint

_REPO = pathlib.Path(__file__).resolve().parents[1]
_TABLE = classes.get_class_table("cityscapes_categories")


@pytest.fixture(scope="module")
def demo_app(tiny_workdir):
  return demo.DemoApp(inpaint.Inpainter.from_workdir(tiny_workdir), 10_000)


def _editor(image, strokes=None):
  return {"background": image, "layers": [] if strokes is None else [strokes],
          "composite": None}


def test_hole_comes_from_strokes_and_mask():
  image = np.zeros([8, 10, 3], np.uint8)
  strokes = np.zeros([8, 10, 4], np.uint8)
  strokes[1:3, 2:4] = (255, 255, 255, 255)
  mask = np.zeros([8, 10], np.uint8)
  mask[6, 9] = 255
  _, hole = demo.hole_from_inputs(_editor(image, strokes), mask)
  expected = np.zeros([8, 10], bool)
  expected[1:3, 2:4] = expected[6, 9] = True
  np.testing.assert_array_equal(hole, expected)


@pytest.mark.parametrize(
    "editor,mask,message",
    [
        (None, None, "Upload an image first"),
        (_editor(np.zeros([8, 10, 3], np.uint8)), None, "Draw the hole"),
        (_editor(np.zeros([8, 10, 3], np.uint8)), np.ones([8, 9], np.uint8),
         "The mask is 9x8 pixels but the image is 10x8"),
    ],
)
def test_bad_inputs_get_clear_errors(editor, mask, message):
  with pytest.raises(gr.Error, match=message):
    demo.hole_from_inputs(editor, mask)


def test_painted_colours_snap_to_the_nearest_class():
  colors = np.array([[_TABLE.colors[7], (3, 2, 140), (120, 60, 125)]], np.uint8)
  np.testing.assert_array_equal(
      demo.labels_from_colors(colors, _TABLE), [[7, 7, 1]]
  )


def test_repainted_labels_change_only_the_hole(demo_app):
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, [24, 40, 3], dtype=np.uint8)
  mask = np.zeros([24, 40], np.uint8)
  mask[6:18, 10:30] = 255
  labels_value, state, status = demo_app.predict(_editor(image), mask, None)
  assert status.startswith("Predicted the labels of 240 hole pixels in a 40x24")
  hole = mask > 0
  (before, after), output, status = demo_app.render(state, labels_value)
  assert status == "Rendered 240 hole pixels of a 40x24 image."
  np.testing.assert_array_equal(output[~hole], image[~hole])
  np.testing.assert_array_equal(before[hole], 255)
  np.testing.assert_array_equal(after, output)
  # Paint the whole label map 'sky': only the hole's pixels may change.
  painted = {"composite": np.broadcast_to(
      np.array(_TABLE.colors[5], np.uint8), [24, 40, 3])}
  _, repainted, _ = demo_app.render(state, painted)
  np.testing.assert_array_equal(repainted[~hole], image[~hole])
  assert np.any(repainted[hole] != output[hole])


def test_painted_labels_of_another_size_are_refused(demo_app):
  image = np.zeros([24, 40, 3], np.uint8)
  mask = np.zeros([24, 40], np.uint8)
  mask[2:5, 2:5] = 255
  _, state, _ = demo_app.predict(_editor(image), mask, None)
  with pytest.raises(gr.Error, match="painted labels are 20x12 pixels"):
    demo_app.render(state, {"composite": np.zeros([12, 20, 3], np.uint8)})


def test_images_over_the_pixel_limit_are_refused(demo_app):
  image = np.zeros([200, 200, 3], np.uint8)
  mask = np.full([200, 200], 255, np.uint8)
  with pytest.raises(gr.Error, match="at most 10,000"):
    demo_app.predict(_editor(image), mask, None)


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


@pytest.fixture
def server(tiny_workdir):
  port = _free_port()
  process = subprocess.Popen(
      [sys.executable, "-m", "spg_jax.inference.demo", f"--workdir={tiny_workdir}",
       f"--port={port}"],
      cwd=_REPO,
      env={**os.environ, "XLA_FLAGS": "", "GRADIO_ANALYTICS_ENABLED": "False"},
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
  )
  url = f"http://127.0.0.1:{port}"
  deadline = time.monotonic() + 120
  while True:
    try:
      urllib.request.urlopen(url, timeout=2)
      break
    except OSError:
      if process.poll() is not None or time.monotonic() > deadline:
        process.kill()
        pytest.fail(f"The demo did not start: {process.stderr.read()[-3000:]}")
      time.sleep(0.5)
  yield url, process.pid
  process.terminate()
  process.wait(timeout=30)


def _wait_for_status(page, prefix: str) -> None:
  """Waits until the status line starts with `prefix`; fails on an error toast.

  The status is the last output of each event, so it also says that the
  event's other outputs (labels, state, images) have arrived.
  """
  page.wait_for_function(
      "prefix => document.querySelector('#status')?.innerText.trim()"
      ".startsWith(prefix) || document.querySelector("
      "'[data-testid=\"toast-body\"]')",
      arg=prefix,
      # Compiling a network for the sample's size takes seconds alone and over
      # a minute beside the rest of the suite on two cores.
      timeout=240_000,
  )
  toast = page.query_selector('[data-testid="toast-body"]')
  assert toast is None, f"The demo showed an error: {toast.inner_text()}"


def test_browser_clicks_through_example_predict_and_render(server):
  chromium = shutil.which("chromium")
  assert chromium, "Install Debian's chromium: apt-get install -y chromium"
  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=chromium, args=["--no-sandbox"]
    )
    page = browser.new_page()
    page.goto(server[0], wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector("#predict", timeout=60_000)
    assert not page.query_selector("#result img")
    page.locator("table tbody tr").first.click()  # The example.
    page.wait_for_selector("#known_labels img", timeout=30_000)
    page.click("#predict")
    _wait_for_status(page, "Predicted the labels of")
    page.wait_for_selector("#labels_editor canvas", timeout=30_000)
    page.click("#render")
    _wait_for_status(page, "Rendered")
    page.wait_for_function(
        "() => { const image = document.querySelector('#result img');"
        " return image && image.complete && image.naturalWidth > 0; }",
        timeout=30_000,
    )
    size = page.evaluate(
        "() => { const image = document.querySelector('#result img');"
        " return [image.naturalWidth, image.naturalHeight]; }"
    )
    browser.close()
  assert size == [128, 96]  # data/samples/street.png, rendered whole.


def test_eight_concurrent_sessions_all_get_the_right_images(server):
  """Eight sessions at once, three times over, all asking for the example:
  every result keeps the known pixels, all are the same image, and the
  server's memory settles (Gradio once rewrote identical cached outputs in
  place, and a session could download another's half-written file)."""
  url, pid = server
  image = np.asarray(Image.open(demo.SAMPLES_DIR / "street.png").convert("RGB"))
  hole = np.asarray(Image.open(demo.SAMPLES_DIR / "street_mask.png")) > 127
  first = demo_load.example_session(url)
  expected = np.asarray(Image.open(first.result))
  np.testing.assert_array_equal(expected[~hole], image[~hole])
  memory = []
  for _ in range(3):
    for session in demo_load.concurrent_round(url, 8):
      np.testing.assert_array_equal(np.asarray(Image.open(session.result)),
                                    expected)
      np.testing.assert_array_equal(np.asarray(Image.open(session.before)),
                                    np.asarray(Image.open(first.before)))
    memory.append(demo_load.resident_mib(pid))
  assert memory[-1] - memory[0] < 200, memory
