r"""A web demo: draw a hole, see the predicted labels, repaint them, re-render.

  pip install -e ".[demo]"
  python -m spg_jax.inference.demo --workdir=/tmp/spg_synthetic [--port=7860] [--host=127.0.0.1]

Open the printed address. Upload an image (or click the example) and draw the
hole with the white brush, or upload a hole mask; give the labels of the
known region if you have them (otherwise the run's segmenter labels it, or,
in a run without one, it counts as class 0; see `spg_jax.inference.inpaint`).
"Predict labels" shows SP-Net's completed label map;
paint inside the hole with the class colours and "Render" shows SG-Net's
completion next to the input. The server listens on 127.0.0.1 only unless
`--host` says otherwise, and refuses uploads over `--max_file_size` and images
over `--max_pixels`. Requests queue: each button runs for one session at a
time and at most `QUEUE_SIZE` wait, so memory stays bounded under load.
"""

from collections.abc import Sequence
import pathlib
import tempfile
import time
import uuid

from absl import app
from absl import flags
import gradio as gr
import numpy as np

from spg_jax.data import labelling
from spg_jax.inference import image_files
from spg_jax.inference import inpaint
from spg_jax.runtime import atomic_files
from spg_jax.runtime import commands

SAMPLES_DIR = pathlib.Path(__file__).resolve().parents[2] / "data" / "samples"
_HOLE_COLOR = 255
# Requests that may wait for a button's turn; more are refused.
QUEUE_SIZE = 32
# Seconds an output file is kept, and how often and after how long Gradio
# deletes what it cached (uploads and the outputs it copied).
_OUTPUT_FILE_SECONDS = 600
_CACHE_CLEANING = (600, 3600)


def _hex(color: Sequence[int]) -> str:
  return "#{:02x}{:02x}{:02x}".format(*color)


def hole_from_inputs(
    editor_value: dict | None, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
  """The image and hole from the editor (drawn strokes) and/or a mask upload.

  Raises:
    gr.Error: no image, no hole, or a mask of another size.
  """
  if not editor_value or editor_value.get("background") is None:
    raise gr.Error("Upload an image first (or click the example).")
  image = np.asarray(editor_value["background"])[..., :3].astype(np.uint8)
  hole = np.zeros(image.shape[:2], bool)
  for layer in editor_value.get("layers") or []:
    layer = np.asarray(layer)
    if layer.ndim == 3 and layer.shape[-1] == 4:
      hole |= layer[..., 3] > 0  # Any painted stroke.
  if mask is not None:
    mask = np.asarray(mask)
    if mask.shape[:2] != image.shape[:2]:
      raise gr.Error(
          f"The mask is {mask.shape[1]}x{mask.shape[0]} pixels but the image"
          f" is {image.shape[1]}x{image.shape[0]}."
      )
    hole |= mask.reshape(mask.shape[:2] + (-1,))[..., :3].any(axis=-1)
  if not hole.any():
    raise gr.Error("Draw the hole on the image, or upload a hole mask.")
  return image, hole


def labels_from_colors(
    colors: np.ndarray, class_table: labelling.ClassTable
) -> np.ndarray:
  """Maps painted colours to the nearest class colour's id (brush edges blend).

  Distances are computed once per distinct colour, so memory stays small for
  large images and many classes.
  """
  pixels = np.asarray(colors)[..., :3].reshape(-1, 3).astype(np.int32)
  distinct, inverse = np.unique(pixels, axis=0, return_inverse=True)
  palette = class_table.palette().astype(np.int32)
  distances = np.sum((distinct[:, None] - palette) ** 2, axis=-1)
  nearest = np.argmin(distances, axis=-1).astype(np.int32)
  return nearest[inverse.ravel()].reshape(np.shape(colors)[:2])


def corrupted(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
  """The image with its hole painted white, for display.

  The networks themselves are shown 0 in the hole (mid-grey in [-1, 1]); white
  stands out better on screen and matches the brush the hole is drawn with.
  """
  return np.where(hole[..., None], np.uint8(_HOLE_COLOR), image)


class DemoApp:
  """The demo's callbacks around one `inpaint.Inpainter`."""

  def __init__(self, inpainter: inpaint.Inpainter, max_pixels: int):
    self.inpainter = inpainter
    self.max_pixels = max_pixels

  def predict(self, editor_value, mask, known_labels_path):
    """Returns the label editor's value, the state for `render`, a status."""
    image, hole = hole_from_inputs(editor_value, mask)
    if image.shape[0] * image.shape[1] > self.max_pixels:
      raise gr.Error(
          f"The image has {image.shape[0] * image.shape[1]:,} pixels; this"
          f" demo takes at most {self.max_pixels:,} (--max_pixels)."
      )
    table = self.inpainter.class_table
    try:
      known = None
      if known_labels_path:
        known = image_files.read_labels(known_labels_path, image.shape, table)
        known = known[None]
      labels = self.inpainter.predict_labels(image[None], hole[None], known)[0]
    except image_files.InputError as error:
      raise gr.Error(str(error)) from None
    state = {"image": image, "hole": hole, "labels": labels}
    editor = {"background": table.colorize(labels), "layers": [],
              "composite": None}
    status = (
        f"Predicted the labels of {int(hole.sum()):,} hole pixels in a"
        f" {image.shape[1]}x{image.shape[0]} image: repaint them, then Render."
    )
    return editor, state, status

  def render(self, state, labels_value):
    """Renders from the (repainted) labels.

    Returns:
      The before/after pair, the result and a status line.
    """
    if not state:
      raise gr.Error("Predict the labels first.")
    image, hole, labels = state["image"], state["hole"], state["labels"]
    if labels_value and labels_value.get("composite") is not None:
      painted = labels_from_colors(
          np.asarray(labels_value["composite"]), self.inpainter.class_table
      )
      if painted.shape != labels.shape:
        raise gr.Error(
            f"The painted labels are {painted.shape[1]}x{painted.shape[0]}"
            f" pixels but the image is {labels.shape[1]}x{labels.shape[0]};"
            " paint on the predicted label map without resizing it."
        )
      labels = np.where(hole, painted, labels)
    output = self.inpainter.render(image[None], hole[None], labels[None])[0]
    status = (
        f"Rendered {int(hole.sum()):,} hole pixels of a"
        f" {image.shape[1]}x{image.shape[0]} image."
    )
    return (corrupted(image, hole), output), output, status


class OutputFiles:
  """The PNGs the demo shows, handed to Gradio by path, each a new file.

  Gradio caches an image it is given as an array under a name made from
  its pixels, and writes that file again each time, in place: two sessions
  that make the same image at once (both clicked the example, say) can
  serve each other a half-written file. A file given by path it copies into
  its cache once, under a temporary name renamed into place. Files older
  than `max_age_seconds` (long copied by then) are deleted as new ones come.
  """

  def __init__(self, directory: pathlib.Path, max_age_seconds: float):
    self.directory = directory
    self.max_age_seconds = max_age_seconds

  def write(self, image: np.ndarray) -> str:
    """Writes a uint8 image as a new PNG; returns its path."""
    self._delete_old()
    path = self.directory / f"{uuid.uuid4().hex}.png"
    atomic_files.write_png(path, image)
    return str(path)

  def _delete_old(self) -> None:
    oldest = time.time() - self.max_age_seconds
    for path in self.directory.glob("*.png"):
      if path.stat().st_mtime < oldest:
        path.unlink(missing_ok=True)


def _legend_html(class_table: labelling.ClassTable) -> str:
  items = "".join(
      f'<span style="margin-right:12px"><span style="display:inline-block;'
      f'width:14px;height:14px;background:{_hex(color)};border:1px solid #444;'
      f'vertical-align:middle"></span> {index} {name}</span>'
      for index, (name, color) in enumerate(
          zip(class_table.names, class_table.colors)
      )
  )
  return f"<div>{items}</div>"


def build_demo(
    inpainter: inpaint.Inpainter, max_pixels: int, output_dir: pathlib.Path
) -> gr.Blocks:
  """The Gradio app: inputs, predicted labels to repaint, before/after.

  Its images are written to `output_dir`, which `launch` must allow.
  """
  demo_app = DemoApp(inpainter, max_pixels)
  files = OutputFiles(output_dir, _OUTPUT_FILE_SECONDS)

  def predict(editor_value, mask, known_labels_path):
    value, state, status = demo_app.predict(
        editor_value, mask, known_labels_path
    )
    value = {**value, "background": files.write(value["background"])}
    return value, state, status

  def render(state, labels_value):
    (before, _), output, status = demo_app.render(state, labels_value)
    shown = files.write(output)
    return (files.write(before), shown), shown, status

  table = inpainter.class_table
  palette = [_hex(color) for color in table.colors]
  with gr.Blocks(title="SPG-Net inpainting",
                 delete_cache=_CACHE_CLEANING) as demo:
    gr.Markdown(
        "## SPG-Net: segmentation-guided inpainting\n"
        f"Model: `{inpainter.config.data.name}`, step {inpainter.step}. Draw"
        " the hole in white (or upload a mask), predict its labels, repaint"
        " them with the class colours, render."
    )
    state = gr.State()
    with gr.Row():
      editor = gr.ImageEditor(
          label="Image: draw the hole", type="numpy", image_mode="RGBA",
          brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"),
          elem_id="image_editor",
      )
      with gr.Column():
        mask = gr.Image(label="Or upload a hole mask (white = hole)",
                        type="numpy", image_mode="L", elem_id="mask")
        # image_mode=None keeps an index PNG's ids (gradio converts to RGB
        # by default).
        known = gr.Image(label="Labels of the known region (optional)",
                         type="filepath", image_mode=None,
                         elem_id="known_labels")
    predict_button = gr.Button("Predict labels", variant="primary",
                               elem_id="predict")
    gr.HTML(_legend_html(table))
    labels_editor = gr.ImageEditor(
        label="Labels: paint inside the hole with the class colours",
        type="numpy", brush=gr.Brush(colors=palette, color_mode="fixed"),
        elem_id="labels_editor",
    )
    render_button = gr.Button("Render", variant="primary", elem_id="render")
    # Says when each step has finished (and lets the browser test wait on it).
    status = gr.Markdown(elem_id="status")
    with gr.Row():
      before_after = gr.ImageSlider(label="Before / after", type="numpy",
                                    elem_id="before_after")
      result = gr.Image(label="Result", type="numpy", format="png",
                        elem_id="result")
    gr.Examples(
        examples=[[str(SAMPLES_DIR / "street.png"),
                   str(SAMPLES_DIR / "street_mask.png"),
                   str(SAMPLES_DIR / "street_labels.png")]],
        inputs=[editor, mask, known],
    )
    predict_button.click(predict, [editor, mask, known],
                         [labels_editor, state, status])
    render_button.click(render, [state, labels_editor],
                        [before_after, result, status])
  return demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)


def _define_flags() -> dict[str, flags.FlagHolder]:
  """The command line's flags, defined only when run as a program."""
  holders = {
      "workdir": flags.DEFINE_string("workdir", None, "A training run's workdir."),
      "host": flags.DEFINE_string(
          "host", "127.0.0.1",
          "Address to listen on; 0.0.0.0 exposes the demo to the network.",
      ),
      "port": flags.DEFINE_integer("port", 7860, "Port to listen on."),
      "max_file_size": flags.DEFINE_string(
          "max_file_size", "10mb", "Largest upload accepted."
      ),
      "max_pixels": flags.DEFINE_integer(
          "max_pixels", 4_000_000, "Largest image (height x width) accepted."
      ),
  }
  flags.mark_flag_as_required("workdir")
  return holders


def main(argv: Sequence[str], holders: dict[str, flags.FlagHolder]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    inpainter = inpaint.Inpainter.from_workdir(holders["workdir"].value)
  except image_files.InputError as error:
    raise SystemExit(f"Input error: {error}") from None
  with tempfile.TemporaryDirectory(prefix="spg_demo_") as output_dir:
    build_demo(
        inpainter, holders["max_pixels"].value, pathlib.Path(output_dir)
    ).launch(
        server_name=holders["host"].value,
        server_port=holders["port"].value,
        max_file_size=holders["max_file_size"].value,
        allowed_paths=[str(SAMPLES_DIR), output_dir],
    )


def run() -> None:
  """The command's entry point."""
  commands.run(_define_flags, main)


if __name__ == "__main__":
  run()
