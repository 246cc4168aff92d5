"""Image grids of what the networks do, for TensorBoard and as PNG files.

Each row is one example: the corrupted input (hole in white), the hole mask,
the completed label map in the class colours, SPG-Net's output and the ground
truth, so one look shows whether a bad fill comes from wrong labels or from
bad rendering.
"""


from clu import metric_writers
from etils import epath
import numpy as np

from spg_jax.data import labelling
from spg_jax.runtime import atomic_files

COLUMNS = ("input", "mask", "labels", "output", "ground truth")


def to_uint8(image: np.ndarray) -> np.ndarray:
  """[-1, 1] float image -> uint8 [0, 255]."""
  return np.round((np.clip(image, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def make_grid(
    image: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    output: np.ndarray,
    class_table: labelling.ClassTable,
) -> np.ndarray:
  """Builds a uint8 grid [B*H, len(COLUMNS)*W, 3] from a batch.

  Args:
    image: ground truth [B, H, W, 3] in [-1, 1].
    mask: [B, H, W, 1], 1 = hole.
    labels: completed label ids [B, H, W].
    output: inpainted images [B, H, W, 3] in [-1, 1].
    class_table: colours for `labels`.
  """
  hole = mask > 0
  return grid_from_columns([
      to_uint8(np.where(hole, 1.0, image)),
      hole_image(hole),
      class_table.colorize(labels),
      to_uint8(output),
      to_uint8(image),
  ])


def hole_image(hole: np.ndarray) -> np.ndarray:
  """bool holes [..., 1] -> uint8 RGB [..., 3]: the hole white, the rest black."""
  return np.repeat(hole, 3, axis=-1).astype(np.uint8) * 255


def grid_from_columns(columns: list[np.ndarray]) -> np.ndarray:
  """Lays out batches [B, H, W, 3] as the columns of a [B*H, C*W, 3] grid."""
  rows = np.concatenate(columns, axis=2)
  return np.concatenate(list(rows), axis=0)


def write_grid(
    grid: np.ndarray,
    step: int,
    samples_dir: epath.PathLike,
    writer: metric_writers.MetricWriter,
) -> epath.Path:
  """Writes the grid to TensorBoard and as `samples_dir/step_XXXXXXXX.png`."""
  writer.write_images(step, {"samples": grid[None]})
  path = epath.Path(samples_dir) / f"step_{step:08d}.png"
  atomic_files.write_png(path, grid)
  return path
