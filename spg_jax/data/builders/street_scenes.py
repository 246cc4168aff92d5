"""Procedural street scenes with exact per-pixel labels, in pure numpy.

`render_scene` draws a street seen from a car: sky, building facades with
window grids, a road with lane markings between two sidewalks, trees, grass,
poles with signs and traffic lights, pedestrians, cars and sometimes the
ego-vehicle's hood. Every pixel's label is one of the 8 Cityscapes categories
of `CITYSCAPES_CATEGORIES`, so the scenes stand in for Cityscapes wherever no
download is possible (tests, the default config, Colab demos).

Why the scenes look the way they do:
  - One pinhole camera (horizon row, vanishing point, focal length, camera
    height) places everything, so objects shrink towards the horizon and road,
    sidewalks and facades converge on one point, as in Cityscapes.
  - Each class has its own textures (asphalt grain, paving grout, window
    grids, leaf blotches, ...), varied per instance and per scene, so a hole
    cannot be filled by copying one colour, yet knowing the labels inside a
    hole tells a generator a lot about its pixels: the premise of SPG-Net.
  - Shapes are painted back to front with hard masks and the same mask writes
    the colour and the label, so class boundaries are sharp (no antialiasing)
    and the label map agrees with the image at every pixel.

All geometry is in metres in the world and in pixels on screen, scaled by the
image size, so any size from 32 to 256 (and beyond) works; one generator state
gives the same street at every size. Rendering is vectorised over bounding
boxes, and the noise that textures each part is applied once, to the whole
image, at the end: a few thousand 64x64 scenes take seconds.
"""

import dataclasses
import enum
from typing import Callable

import numpy as np

from spg_jax.data.cityscapes_labels import CITYSCAPES_CATEGORIES

VOID = CITYSCAPES_CATEGORIES.index("void")
FLAT = CITYSCAPES_CATEGORIES.index("flat")
CONSTRUCTION = CITYSCAPES_CATEGORIES.index("construction")
OBJECT = CITYSCAPES_CATEGORIES.index("object")
NATURE = CITYSCAPES_CATEGORIES.index("nature")
SKY = CITYSCAPES_CATEGORIES.index("sky")
HUMAN = CITYSCAPES_CATEGORIES.index("human")
VEHICLE = CITYSCAPES_CATEGORIES.index("vehicle")

# --- Camera (rows/columns as fractions of the image size, lengths in metres).
HORIZON_RANGE = (0.36, 0.5)  # Row of the horizon.
VANISH_X_RANGE = (0.4, 0.6)  # Column of the vanishing point.
FOCAL_RANGE = (0.75, 1.05)  # Focal length.
CAMERA_HEIGHT_M = 1.5

# --- Street layout (metres, lateral offsets from the camera).
ROAD_HALF_WIDTH_RANGE = (1.6, 5.0)  # Camera to each road edge.
SIDEWALK_WIDTH_RANGE = (2.0, 5.0)
CURB_WIDTH_M = 0.25
LANE_WIDTH_M = 3.2
MARKING_WIDTH_M = 0.15
DASH_PERIOD_M = 9.0
CROSSING_PROBABILITY = 0.25
CROSSING_DEPTH_RANGE = (6.0, 30.0)
CROSSING_STRIPE_M = 1.0  # Period of the zebra stripes.
TILE_SIZE_M = 0.7
PARK_PROBABILITY = 0.25  # A side has grass and trees instead of facades.

# --- Buildings.
FACADE_LENGTH_RANGE = (6.0, 22.0)  # Along the street, per building.
FACADE_HEIGHT_RANGE = (5.0, 28.0)
FACADE_GAP_PROBABILITY = 0.12  # A lot between buildings, showing the sky.
STREET_END_RANGE = (40.0, 160.0)  # Depth where the facades stop.
FLOOR_HEIGHT_RANGE = (2.8, 3.8)
WINDOW_SPACING_RANGE = (1.8, 3.6)
WINDOW_FILL_RANGE = (0.35, 0.7)  # Fraction of a floor/bay that is glass.
HAZE_DEPTH_M = 120.0  # Depth at which facades are half-way to haze.
SKYLINE_PROBABILITY = 0.85
SKYLINE_HEIGHT_RANGE = (0.04, 0.3)  # Fraction of the image size.
SKYLINE_WIDTH_RANGE = (0.05, 0.25)
SKYLINE_GAP, SKYLINE_BUILDING, SKYLINE_TREES = 0, 1, 2  # Kinds of blocks.
SKYLINE_KIND_PROBABILITIES = (0.2, 0.6, 0.2)

# --- Objects (metres).
MAX_CARS = 6
MAX_PEOPLE = 8
MAX_POLES = 4
MAX_TREES = 5
CAR_WIDTH_RANGE = (1.65, 1.95)
CAR_HEIGHT_RANGE = (1.35, 1.7)
CAR_LENGTH_RANGE = (3.8, 4.8)
PERSON_HEIGHT_RANGE = (1.5, 1.95)
POLE_HEIGHT_RANGE = (3.5, 6.5)
TRAFFIC_LIGHT_PROBABILITY = 0.5  # Otherwise the pole carries a sign.
TRUNK_HEIGHT_RANGE = (1.8, 3.5)
CROWN_RADIUS_RANGE = (1.2, 2.8)
MIN_OBJECT_DEPTH_M = 3.0
MIN_CAR_DEPTH_M = 6.0
MAX_OBJECT_DEPTH_M = 70.0

# --- Void: ego-vehicle hood or a black border, as in Cityscapes frames.
HOOD_PROBABILITY = 0.3
HOOD_HEIGHT_RANGE = (0.06, 0.14)  # Fraction of the image size.
BORDER_PROBABILITY = 0.25
BORDER_WIDTH_RANGE = (0.02, 0.06)

# --- Colours (RGB in 0..255).
SKY_TOP_COLORS = ((60, 110, 185), (95, 140, 200), (120, 135, 160))
SKY_HORIZON_COLORS = ((175, 205, 235), (200, 215, 230), (185, 190, 200))
CLOUD_COLOR = (235, 238, 242)
HAZE_COLOR = SKY_HORIZON_COLORS[0]
FACADE_COLORS = (
    (150, 95, 75),  # Brick.
    (195, 170, 130),  # Sandstone.
    (125, 118, 108),  # Grey concrete.
    (175, 140, 105),  # Ochre.
    (205, 190, 165),  # Render.
    (110, 90, 80),  # Dark brick.
)
GLASS_COLOR = (45, 60, 80)
ASPHALT_COLOR = (82, 78, 88)
MARKING_COLOR = (215, 215, 205)
SIDEWALK_COLOR = (158, 152, 145)
CURB_COLOR = (180, 178, 172)
GRASS_COLOR = (95, 130, 50)
LEAF_COLOR = (60, 105, 35)
TRUNK_COLOR = (85, 62, 40)
POLE_COLOR = (105, 108, 112)
SIGN_COLORS = ((200, 30, 30), (30, 70, 170), (225, 190, 40), (240, 240, 240))
LAMP_COLORS = ((230, 40, 30), (240, 170, 20), (40, 200, 80))  # Top to bottom.
HOUSING_COLOR = (35, 35, 38)
CAR_COLORS = (
    (170, 25, 30), (25, 45, 120), (225, 225, 225), (30, 30, 33),
    (150, 155, 160), (40, 90, 60), (215, 180, 40),
)
TYRE_COLOR = (25, 25, 25)
TAIL_LIGHT_COLOR = (200, 20, 20)
PLATE_COLOR = (230, 230, 220)
SKIN_COLORS = ((230, 190, 160), (190, 140, 100), (120, 80, 55))
CLOTH_COLORS = (
    (200, 40, 40), (40, 60, 150), (240, 240, 235), (30, 30, 35),
    (120, 120, 125), (210, 170, 60), (90, 60, 120), (60, 120, 90),
)
TROUSER_COLORS = ((35, 40, 70), (30, 30, 32), (150, 130, 100), (90, 90, 95))
HOOD_COLOR = (40, 42, 48)
BORDER_COLOR = (4, 4, 4)

# --- Texture: per-instance colour shifts and the two noise fields.
INSTANCE_JITTER = 6.0  # Std of the per-instance colour shift per channel.
BRIGHTNESS_RANGE = (0.85, 1.15)  # Per-instance brightness factor.
NOISE_CELLS = 10  # Blotch noise: cells across the image.
CLOUD_CELLS = 3  # Cloud noise: cells across the image.


class Texture(enum.IntEnum):
  """Kinds of surface, each with its own amount of noise (TEXTURE_NOISE)."""

  SMOOTH = 0  # Paint, glass, metal, skin.
  ROUGH = 1  # Paving, concrete, cloth, bark.
  ASPHALT = 2
  FOLIAGE = 3
  GRASS = 4
  SKY = 5  # Clouds come from their own noise field.
  BLACK = 6  # Image borders.


# Per texture: (grain, blotch) = the std of the additive pixel noise in grey
# levels, and the relative brightness change per unit of smooth noise.
TEXTURE_NOISE = {
    Texture.SMOOTH: (3.0, 0.03),
    Texture.ROUGH: (5.0, 0.05),
    Texture.ASPHALT: (6.0, 0.08),
    Texture.FOLIAGE: (10.0, 0.3),
    Texture.GRASS: (8.0, 0.2),
    Texture.SKY: (1.5, 0.0),
    Texture.BLACK: (1.0, 0.0),
}
_NOISE_TABLE = np.float32([TEXTURE_NOISE[t] for t in Texture])  # [T, 2]


@dataclasses.dataclass(frozen=True)
class _Window:
  """A clipped box of the image: its slices and pixel-centre coordinates."""

  slices: tuple[slice, slice]
  rows: np.ndarray  # [h, 1] float32, pixel centres.
  cols: np.ndarray  # [1, w] float32, pixel centres.


def _window(size: int, top: float, bottom: float, left: float,
            right: float) -> _Window | None:
  """Returns the pixels whose centres may lie in the box, or None if none."""
  y0, y1 = max(int(np.floor(top)), 0), min(int(np.ceil(bottom)), size)
  x0, x1 = max(int(np.floor(left)), 0), min(int(np.ceil(right)), size)
  if y0 >= y1 or x0 >= x1:
    return None
  rows = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None]
  cols = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :]
  return _Window((slice(y0, y1), slice(x0, x1)), rows, cols)


def _frac(x: np.ndarray) -> np.ndarray:
  """Fractional part, for periodic patterns (faster than `x % 1.0`)."""
  return x - np.floor(x)


def _smooth_noise(rng: np.random.Generator, size: int,
                  cells: int) -> np.ndarray:
  """Bilinearly upsampled Gaussian noise [size, size] with blobs ~size/cells.

  The coarse grid does not depend on `size`, so the field is the same
  continuous pattern at every resolution.
  """
  grid = rng.standard_normal((cells + 2, cells + 2), np.float32)
  t = (np.arange(size, dtype=np.float32) + 0.5) * (cells / size)
  i = t.astype(np.int32)
  f = (t - i)[:, None]
  rows = grid[i] * (1 - f) + grid[i + 1] * f  # [size, cells + 2]
  return rows[:, i] * (1 - f.T) + rows[:, i + 1] * f.T


@dataclasses.dataclass
class _Canvas:
  """The scene being painted: colours, labels and texture amplitudes.

  Painting writes a flat colour (or a colour array) plus how much grain and
  blotch noise each pixel gets; `finish` applies the scene's noise fields to
  the whole image at once, which is far cheaper than texturing every part.
  """

  color: np.ndarray  # [S, S, 3] float32, 0..255, before noise.
  label: np.ndarray  # [S, S] uint8.
  texture: np.ndarray  # [S, S] uint8 `Texture` of each pixel.
  grain: np.ndarray  # [S, S] float32, white noise: pixel-scale texture.
  blotch: np.ndarray  # [S, S] float32, smooth noise: stains, leaves.

  @classmethod
  def empty(cls, rng: np.random.Generator, size: int) -> "_Canvas":
    """A canvas with fresh noise fields; every pixel is painted later."""
    return cls(
        color=np.zeros((size, size, 3), np.float32),
        label=np.zeros((size, size), np.uint8),
        texture=np.zeros((size, size), np.uint8),
        grain=_child(rng).standard_normal((size, size), np.float32),
        blotch=_smooth_noise(_child(rng), size, NOISE_CELLS))

  @property
  def size(self) -> int:
    return self.label.shape[0]

  def fill(self, win: _Window, mask, class_id: int, color,
           texture: Texture = Texture.ROUGH) -> None:
    """Paints `class_id`, `color` and `texture` where `mask` holds in `win`.

    Args:
      win: the pixels concerned.
      mask: bool, broadcastable to [h, w].
      class_id: the label to write.
      color: RGB, broadcastable to [h, w, 3].
      texture: the kind of surface, which sets the noise added at the end.
    """
    mask = np.asarray(mask)
    np.copyto(self.color[win.slices], color, where=mask[..., None])
    np.copyto(self.label[win.slices], np.uint8(class_id), where=mask)
    np.copyto(self.texture[win.slices], np.uint8(texture), where=mask)

  def finish(self) -> tuple[np.ndarray, np.ndarray]:
    """Applies the noise and returns the uint8 image and label map."""
    grain, blotch = np.moveaxis(_NOISE_TABLE[self.texture], -1, 0)
    shade = 1.0 + blotch * self.blotch
    image = self.color * shade[..., None] + (grain * self.grain)[..., None]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), self.label


@dataclasses.dataclass(frozen=True)
class _Camera:
  """A level pinhole camera CAMERA_HEIGHT_M above a flat ground.

  A world point (x right, depth ahead, z up, in metres) appears at column
  vanish_x + focal * x / depth and row horizon + focal * (h - z) / depth.
  """

  size: int
  horizon: float
  vanish_x: float
  focal: float

  def column(self, x: float, depth: float) -> float:
    return self.vanish_x + self.focal * x / depth

  def row(self, z: float, depth: float) -> float:
    return self.horizon + self.focal * (CAMERA_HEIGHT_M - z) / depth

  def ground_depth(self, row: float) -> float:
    """Depth of the ground seen at `row` (which must lie below the horizon)."""
    return self.focal * CAMERA_HEIGHT_M / (row - self.horizon)

  def metres_per_pixel(self, depth: float) -> float:
    return depth / self.focal

  def upright(self, depth: float, x0: float, x1: float, z0: float, z1: float
              ) -> tuple[_Window, np.ndarray, np.ndarray] | None:
    """Pixels of the upright box [x0, x1] x [z0, z1] facing us at `depth`.

    Returns:
      The window and the world coordinates x [1, w] and z [h, 1] of its pixel
      centres on the plane at `depth`, or None if the box is off-screen.
    """
    win = _window(self.size, self.row(z1, depth), self.row(z0, depth),
                  self.column(x0, depth), self.column(x1, depth))
    if win is None:
      return None
    x = (win.cols - self.vanish_x) * (depth / self.focal)
    z = CAMERA_HEIGHT_M - (win.rows - self.horizon) * (depth / self.focal)
    return win, x, z

  def side_plane(self, x_plane: float, depth0: float, depth1: float,
                 z1: float) -> tuple[_Window, np.ndarray, np.ndarray] | None:
    """Pixels of the wall x = x_plane between depth0 and depth1, z in [0, z1].

    Returns:
      The window and the depth [1, w] and height z [h, w] of the wall at each
      pixel (pixels on the far side of the vanishing point get a huge depth),
      or None if the wall is off-screen or seen edge-on.
    """
    if abs(x_plane) < 1e-3:
      return None
    cols = sorted((self.column(x_plane, depth0), self.column(x_plane, depth1)))
    top = min(self.row(z1, depth0), self.row(z1, depth1))
    bottom = max(self.row(0.0, depth0), self.row(0.0, depth1))
    win = _window(self.size, top, bottom, cols[0], cols[1])
    if win is None:
      return None
    offset = win.cols - self.vanish_x
    offset = np.where(offset * x_plane > 0, offset, np.float32(x_plane * 1e-6))
    depth = self.focal * x_plane / offset
    z = CAMERA_HEIGHT_M - (win.rows - self.horizon) * depth / self.focal
    return win, depth, z


def _child(rng: np.random.Generator) -> np.random.Generator:
  """A new generator seeded from `rng`: one per part of a scene."""
  return np.random.default_rng(rng.integers(2**63))


def _pick(rng: np.random.Generator, options):
  return options[rng.integers(len(options))]


def _jitter(rng: np.random.Generator, color, amount: float = INSTANCE_JITTER
            ) -> np.ndarray:
  """Shifts a colour per instance: brightness and a little hue."""
  color = np.asarray(color, np.float32) * rng.uniform(*BRIGHTNESS_RANGE)
  return color + rng.normal(0.0, amount, 3).astype(np.float32)


def _jitter_palette(rng: np.random.Generator, palette, count: int
                    ) -> np.ndarray:
  """`count` colours [count, 3], each a jittered random pick of `palette`."""
  colors = np.float32(palette)[rng.integers(len(palette), size=count)]
  return (colors * rng.uniform(*BRIGHTNESS_RANGE, (count, 1)) +
          rng.normal(0.0, INSTANCE_JITTER, (count, 3))).astype(np.float32)


# ----------------------------------------------------------------- Background.


def _draw_sky(canvas: _Canvas, rng: np.random.Generator,
              cam: _Camera) -> None:
  """Fills the image with sky: a vertical gradient with soft clouds."""
  win = _window(canvas.size, 0, canvas.size, 0, canvas.size)
  style = rng.integers(len(SKY_TOP_COLORS))
  top = _jitter(rng, SKY_TOP_COLORS[style])
  bottom = _jitter(rng, SKY_HORIZON_COLORS[style])
  t = np.clip(win.rows / max(cam.horizon, 1.0), 0.0, 1.0)[..., None]
  gradient = top * (1 - t) + bottom * t
  clouds = _smooth_noise(rng, canvas.size, CLOUD_CELLS) + 0.4 * canvas.blotch
  cloudiness = rng.uniform(0.0, 1.0)
  cover = np.clip(clouds * 0.8 + 1.6 * cloudiness - 1.2, 0.0, 0.9)
  color = gradient + cover[..., None] * (np.float32(CLOUD_COLOR) - gradient)
  canvas.fill(win, True, SKY, color, Texture.SKY)


def _draw_skyline(canvas: _Canvas, rng: np.random.Generator,
                  cam: _Camera) -> None:
  """Far buildings (hazy blocks) and tree lines standing on the horizon.

  The skyline is a row of blocks of random widths across the image; each is
  a building, a tree line with rounded tops, or a gap. All blocks are drawn
  at once through per-column lookups.
  """
  if rng.uniform() > SKYLINE_PROBABILITY:
    return
  size = canvas.size
  count = int(np.ceil(1.1 / SKYLINE_WIDTH_RANGE[0]))  # Enough to cover.
  widths = rng.uniform(*SKYLINE_WIDTH_RANGE, count) * size
  rights = np.cumsum(widths) - rng.uniform(0.0, 0.1) * size
  heights = rng.uniform(*SKYLINE_HEIGHT_RANGE, count) * size
  kind = rng.choice(3, count, p=SKYLINE_KIND_PROBABILITIES)
  base = np.where((kind == SKYLINE_TREES)[:, None],
                  _jitter_palette(rng, (LEAF_COLOR,), count),
                  _jitter_palette(rng, FACADE_COLORS, count))
  base = 0.6 * base + 0.4 * np.float32(HAZE_COLOR)

  win = _window(size, cam.horizon - heights.max(), cam.horizon + 1, 0, size)
  if win is None:
    return
  block = np.minimum(np.searchsorted(rights, win.cols[0]), count - 1)  # [w]
  trees = kind[block] == SKYLINE_TREES
  phase = (win.cols[0] - rights[block] + widths[block]) / widths[block]
  bumps = np.where(trees, 0.7 + 0.3 * np.cos(phase * 3 * np.pi), 1.0)
  mask = win.rows >= cam.horizon - heights[block] * bumps  # [h, w]
  color = base[block][None]  # [1, w, 3]
  canvas.fill(win, mask & (kind[block] == SKYLINE_BUILDING), CONSTRUCTION,
              color, Texture.SMOOTH)
  canvas.fill(win, mask & trees, NATURE, color, Texture.FOLIAGE)


@dataclasses.dataclass(frozen=True)
class _Street:
  """Lateral layout of the street, in metres from the camera (left < 0)."""

  road_left: float
  road_right: float
  sidewalk_left: float  # Outer edge of each sidewalk.
  sidewalk_right: float
  park_left: bool  # Grass and trees beyond the sidewalk instead of facades.
  park_right: bool
  crossing_depth: float | None  # Where a zebra crossing is, if any.


def _sample_street(rng: np.random.Generator) -> _Street:
  """Draws road width, sidewalks and which sides have buildings."""
  left = -rng.uniform(*ROAD_HALF_WIDTH_RANGE)
  right = rng.uniform(*ROAD_HALF_WIDTH_RANGE)
  walk_left = left - rng.uniform(*SIDEWALK_WIDTH_RANGE)
  walk_right = right + rng.uniform(*SIDEWALK_WIDTH_RANGE)
  park_left, park_right = rng.uniform(size=2) < PARK_PROBABILITY
  crossing = None
  if rng.uniform() < CROSSING_PROBABILITY:
    crossing = rng.uniform(*CROSSING_DEPTH_RANGE)
  return _Street(left, right, walk_left, walk_right, bool(park_left),
                 bool(park_right), crossing)


def _draw_ground(canvas: _Canvas, rng: np.random.Generator, cam: _Camera,
                 street: _Street) -> None:
  """Road with markings, curbs, paved sidewalks and grass (parks).

  Every ground pixel is mapped back to its world position (x, depth), and
  each surface is a range of x; patterns (tiles, dashes) are periodic in x or
  depth, so they shrink towards the horizon like the real thing.
  """
  win = _window(canvas.size, cam.horizon, canvas.size, 0, canvas.size)
  if win is None:
    return
  below = win.rows > cam.horizon
  depth = cam.focal * CAMERA_HEIGHT_M / np.maximum(win.rows - cam.horizon, 1e-3)
  x = (win.cols - cam.vanish_x) * depth / cam.focal  # [h, w]

  # Paving everywhere, then grass, curbs and road on top.
  paving = _jitter(rng, SIDEWALK_COLOR, INSTANCE_JITTER / 2)
  canvas.fill(win, below, FLAT, paving)
  grout = (_frac(x / TILE_SIZE_M) < 0.1) | (_frac(depth / TILE_SIZE_M) < 0.1)
  canvas.fill(win, below & grout, FLAT, paving * 0.8)

  grass = _jitter(rng, GRASS_COLOR)
  if street.park_left:
    canvas.fill(win, below & (x < street.sidewalk_left), NATURE, grass,
                Texture.GRASS)
  if street.park_right:
    canvas.fill(win, below & (x > street.sidewalk_right), NATURE, grass,
                Texture.GRASS)

  curb = ((x > street.road_left - CURB_WIDTH_M) &
          (x < street.road_right + CURB_WIDTH_M))
  canvas.fill(win, below & curb, FLAT, _jitter(rng, CURB_COLOR))

  road = below & (x > street.road_left) & (x < street.road_right)
  canvas.fill(win, road, FLAT, _jitter(rng, ASPHALT_COLOR, INSTANCE_JITTER / 2),
              Texture.ASPHALT)
  # Lane lines: dashed between lanes, solid near each edge; maybe a crossing.
  lanes = np.arange(street.road_left + LANE_WIDTH_M, street.road_right - 1.0,
                    LANE_WIDTH_M)
  marking = np.zeros_like(road)
  for lane in lanes:
    marking |= np.abs(x - lane) < MARKING_WIDTH_M / 2
  marking &= _frac(depth / DASH_PERIOD_M) < 0.4
  for edge in (street.road_left + 0.3, street.road_right - 0.3):
    marking |= np.abs(x - edge) < MARKING_WIDTH_M / 2
  if street.crossing_depth is not None:
    marking |= ((np.abs(depth - street.crossing_depth) < 2.0) &
                (_frac(x / CROSSING_STRIPE_M) < 0.5))
  canvas.fill(win, road & marking, FLAT, _jitter(rng, MARKING_COLOR))


def _draw_facades(canvas: _Canvas, rng: np.random.Generator, cam: _Camera,
                  x_plane: float) -> None:
  """A row of buildings along the wall x = x_plane, with window grids.

  Buildings are segments along the depth axis, each with its own height,
  colour, floor height and window bays; gaps between them show the sky. All
  segments are drawn at once through per-column lookups.
  """
  end = rng.uniform(*STREET_END_RANGE)
  count = int(np.ceil(end / (0.5 * FACADE_LENGTH_RANGE[0]))) + 1  # Enough.
  gap = rng.uniform(size=count) < FACADE_GAP_PROBABILITY
  lengths = rng.uniform(*FACADE_LENGTH_RANGE, count) * np.where(gap, 0.5, 1)
  starts = np.concatenate([[0.0], np.cumsum(lengths)]).astype(np.float32)
  heights = np.where(gap, 0.0, rng.uniform(*FACADE_HEIGHT_RANGE, count))
  colors = _jitter_palette(rng, FACADE_COLORS, count)
  floors = rng.uniform(*FLOOR_HEIGHT_RANGE, count).astype(np.float32)
  bays = rng.uniform(*WINDOW_SPACING_RANGE, count).astype(np.float32)
  fills = rng.uniform(*WINDOW_FILL_RANGE, count).astype(np.float32)
  lights = rng.uniform(0.6, 1.6, 64).astype(np.float32)  # Per window.

  found = cam.side_plane(x_plane, 0.5, end, heights.max())
  if found is None:
    return
  win, wall_depth, z = found
  index = np.clip(np.searchsorted(starts, wall_depth, side="right") - 1, 0,
                  count - 1)  # [1, w]
  height = heights[index].astype(np.float32)
  wall = (z >= 0) & (z < height) & (wall_depth < end)
  haze = (wall_depth / (wall_depth + HAZE_DEPTH_M))[..., None] * 0.6
  color = colors[index[0]][None] * (1 - haze) + np.float32(HAZE_COLOR) * haze
  canvas.fill(win, wall, CONSTRUCTION, color)

  fill = fills[index]
  level = z / floors[index]
  column = (wall_depth - starts[index]) / bays[index]
  level_frac, column_frac = _frac(level), _frac(column)
  glass = (wall & (level >= 1.0) & (level_frac > 0.3) &
           (level_frac < 0.3 + fill) & (np.abs(column_frac - 0.5) < fill / 2) &
           (z < height - 0.6))
  # A brightness per window, so that windows differ (lights, reflections).
  window_id = (level.astype(np.int32) * 7 + column.astype(np.int32) * 13) % 64
  glass_color = np.float32(GLASS_COLOR) * lights[window_id][..., None]
  canvas.fill(win, glass, CONSTRUCTION, glass_color, Texture.SMOOTH)


# -------------------------------------------------------------------- Objects.


def _draw_car(canvas: _Canvas, rng: np.random.Generator, cam: _Camera,
              x: float, depth: float) -> None:
  """A car seen from behind at lateral centre x, rear at `depth`.

  Its side facing the camera axis is drawn as a wall in perspective, then the
  rear face: body, cabin with rear window, tail lights, plate and tyres.
  """
  width = rng.uniform(*CAR_WIDTH_RANGE)
  height = rng.uniform(*CAR_HEIGHT_RANGE)
  length = rng.uniform(*CAR_LENGTH_RANGE)
  paint = _jitter(rng, _pick(rng, CAR_COLORS))
  glass = _jitter(rng, GLASS_COLOR)
  belt = 0.55 * height  # Where the windows start.
  left, right = x - width / 2, x + width / 2

  side_x = left if left > 0 else right if right < 0 else None
  found = None
  if side_x is not None:
    found = cam.side_plane(side_x, depth, depth + length, height)
  if found is not None:
    win, d, z = found
    along = d - depth
    body = (along >= 0) & (along <= length) & (z >= 0.2) & (z < belt)
    cabin = ((z >= belt) & (z < height) & (along > 0.9 + (z - belt)) &
             (along < length - 0.7 - 0.6 * (z - belt)))
    wheel = np.zeros_like(body)
    for centre in (0.8, length - 0.8):
      wheel |= ((along - centre) / 0.33) ** 2 + ((z - 0.33) / 0.33) ** 2 < 1
    window = cabin & (z < height - 0.08) & (z > belt + 0.05)
    canvas.fill(win, body | cabin, VEHICLE, paint * 0.8, Texture.SMOOTH)
    canvas.fill(win, window, VEHICLE, glass, Texture.SMOOTH)
    canvas.fill(win, wheel, VEHICLE, TYRE_COLOR, Texture.SMOOTH)

  found = cam.upright(depth, left, right, 0.0, height)
  if found is None:
    return
  win, u, z = found
  u = np.abs(u - x)  # Distance from the car's centre line.
  half = width / 2
  taper = 0.15 + 0.15 * (z - belt) / (height - belt)
  body = (u < half) & (z >= 0.2) & (z < belt)
  cabin = (z >= belt) & (z < height) & (u < half - taper)
  tyre = (u > half - 0.38) & (u < half - 0.05) & (z < 0.25)
  rear_window = (cabin & (u < half - taper - 0.08) & (z > belt + 0.08) &
                 (z < height - 0.07))
  lamp = ((u > half - 0.35) & (u < half - 0.03) & (z > belt - 0.22) &
          (z < belt - 0.06))
  plate = (u < 0.25) & (z > 0.35) & (z < 0.47)
  canvas.fill(win, body | cabin, VEHICLE, paint, Texture.SMOOTH)
  canvas.fill(win, rear_window, VEHICLE, glass, Texture.SMOOTH)
  canvas.fill(win, lamp, VEHICLE, TAIL_LIGHT_COLOR, Texture.SMOOTH)
  canvas.fill(win, plate, VEHICLE, PLATE_COLOR, Texture.SMOOTH)
  canvas.fill(win, tyre, VEHICLE, TYRE_COLOR, Texture.SMOOTH)


def _draw_person(canvas: _Canvas, rng: np.random.Generator, cam: _Camera,
                 x: float, depth: float) -> None:
  """A pedestrian: legs, torso with arms, head; clothes vary per person."""
  height = rng.uniform(*PERSON_HEIGHT_RANGE)
  stride = rng.uniform(-0.1, 0.1)  # Legs apart by this much at the feet.
  shirt = _jitter(rng, _pick(rng, CLOTH_COLORS))
  trousers = _jitter(rng, _pick(rng, TROUSER_COLORS))
  skin = _jitter(rng, _pick(rng, SKIN_COLORS))
  found = cam.upright(depth, x - 0.35, x + 0.35, 0.0, height)
  if found is None:
    return
  win, u, z = found
  u = u - x
  z = z / height  # Heights relative to the body.
  thin = cam.metres_per_pixel(depth) / 2  # Keeps limbs >= 1 pixel wide.
  leg = max(0.08, thin)
  spread = 0.09 + stride * (0.48 - z)
  legs = (z < 0.48) & ((np.abs(u + spread) < leg) | (np.abs(u - spread) < leg))
  torso = (z >= 0.46) & (z < 0.82) & (np.abs(u) < max(0.2, thin))
  arms = ((z >= 0.5) & (z < 0.8) &
          (np.abs(np.abs(u) - 0.24) < max(0.05, thin)))
  head = (u / 0.1) ** 2 + ((z - 0.9) * height / 0.12) ** 2 < 1
  canvas.fill(win, torso | arms, HUMAN, shirt)
  canvas.fill(win, legs, HUMAN, trousers)
  canvas.fill(win, head, HUMAN, skin, Texture.SMOOTH)


def _draw_pole(canvas: _Canvas, rng: np.random.Generator, cam: _Camera,
               x: float, depth: float) -> None:
  """A pole with a traffic light or a traffic sign (disc or plate) on top."""
  height = rng.uniform(*POLE_HEIGHT_RANGE)
  metal = _jitter(rng, POLE_COLOR)
  traffic_light = rng.uniform() < TRAFFIC_LIGHT_PROBABILITY
  lit = rng.integers(len(LAMP_COLORS))
  disc = rng.uniform() < 0.5
  sign_color = _jitter(rng, _pick(rng, SIGN_COLORS))
  found = cam.upright(depth, x - 0.5, x + 0.5, 0.0, height + 0.1)
  if found is None:
    return
  win, u, z = found
  u = u - x
  half = max(0.07, cam.metres_per_pixel(depth) / 2)
  pole = (np.abs(u) < half) & (z < height)
  canvas.fill(win, pole, OBJECT, metal, Texture.SMOOTH)
  if traffic_light:  # A housing with three lamps, one of them lit.
    housing = (np.abs(u) < 0.18) & (z > height - 0.95) & (z < height)
    canvas.fill(win, housing, OBJECT, HOUSING_COLOR, Texture.SMOOTH)
    for i, lamp_color in enumerate(LAMP_COLORS):
      lamp_z = height - 0.2 - 0.28 * i
      lamp = (u / 0.1) ** 2 + ((z - lamp_z) / 0.1) ** 2 < 1
      shade = 1.0 if i == lit else 0.35
      canvas.fill(win, lamp, OBJECT, np.float32(lamp_color) * shade,
                  Texture.SMOOTH)
  else:
    centre = height - 0.35
    if disc:
      sign = (u / 0.33) ** 2 + ((z - centre) / 0.33) ** 2 < 1
    else:
      sign = (np.abs(u) < 0.35) & (np.abs(z - centre) < 0.28)
    canvas.fill(win, sign, OBJECT, sign_color, Texture.SMOOTH)


def _draw_tree(canvas: _Canvas, rng: np.random.Generator, cam: _Camera,
               x: float, depth: float) -> None:
  """A tree: a trunk under a crown of overlapping ellipses (all nature)."""
  trunk_height = rng.uniform(*TRUNK_HEIGHT_RANGE)
  radius = rng.uniform(*CROWN_RADIUS_RANGE)
  blobs = [(rng.uniform(-0.6, 0.6) * radius,
            trunk_height + radius * rng.uniform(0.7, 1.1),
            radius * rng.uniform(0.6, 0.9)) for _ in range(3)]
  bark = _jitter(rng, TRUNK_COLOR)
  leaves = _jitter(rng, LEAF_COLOR)
  found = cam.upright(depth, x - 1.6 * radius, x + 1.6 * radius, 0.0,
                      trunk_height + 2 * radius)
  if found is None:
    return
  win, u, z = found
  u = u - x
  half = max(0.15, cam.metres_per_pixel(depth) / 2)
  trunk = (np.abs(u) < half) & (z < trunk_height + radius * 0.5)
  crown = np.zeros_like(trunk)
  for cx, cz, r in blobs:
    crown |= ((u - cx) / r) ** 2 + ((z - cz) / (r * 0.9)) ** 2 < 1
  canvas.fill(win, trunk, NATURE, bark)
  canvas.fill(win, crown, NATURE, leaves, Texture.FOLIAGE)


def _draw_bush(canvas: _Canvas, rng: np.random.Generator, cam: _Camera,
               x: float, depth: float) -> None:
  """A low hedge or bush on the ground."""
  width = rng.uniform(0.8, 2.5)
  height = rng.uniform(0.5, 1.3)
  leaves = _jitter(rng, LEAF_COLOR)
  found = cam.upright(depth, x - width / 2, x + width / 2, 0.0, height)
  if found is None:
    return
  win, u, z = found
  mask = ((u - x) / (width / 2)) ** 2 + (z / height) ** 2 < 1
  canvas.fill(win, mask, NATURE, leaves, Texture.FOLIAGE)


_Draw = Callable[[_Canvas, np.random.Generator, _Camera, float, float], None]


def _sample_depth(rng: np.random.Generator, cam: _Camera,
                  nearest: float = MIN_OBJECT_DEPTH_M) -> float:
  """A ground depth, uniform in image rows (so near and far both occur)."""
  far = cam.row(0.0, MAX_OBJECT_DEPTH_M)
  near = cam.row(0.0, nearest)
  return cam.ground_depth(rng.uniform(far, near))


def _plan_objects(rng: np.random.Generator, cam: _Camera, street: _Street
                  ) -> list[tuple[float, float, _Draw, np.random.Generator]]:
  """Places cars on the road and the rest on sidewalks or grass.

  Returns:
    (depth, x, draw function, the object's own generator) for every object,
    in no particular order.
  """
  plan = []

  def add(depth: float, x: float, draw: _Draw) -> None:
    plan.append((depth, x, draw, _child(rng)))

  road_left, road_right = street.road_left, street.road_right
  for _ in range(rng.integers(0, MAX_CARS + 1)):
    add(_sample_depth(rng, cam, MIN_CAR_DEPTH_M),
        rng.uniform(road_left + 1.0, road_right - 1.0), _draw_car)
  sides = ((street.sidewalk_left, road_left),
           (road_right, street.sidewalk_right))
  for _ in range(rng.integers(0, MAX_PEOPLE + 1)):
    lo, hi = _pick(rng, sides)
    add(_sample_depth(rng, cam), rng.uniform(lo + 0.4, hi - 0.4), _draw_person)
  for _ in range(rng.integers(0, MAX_POLES + 1)):
    curb = _pick(rng, (road_left - 0.5, road_right + 0.5))
    add(_sample_depth(rng, cam), curb, _draw_pole)
  for _ in range(rng.integers(0, MAX_TREES + 1)):
    lo, hi = _pick(rng, sides)
    add(_sample_depth(rng, cam), rng.uniform(lo + 0.8, hi - 0.8), _draw_tree)
  for edge, outwards, park in ((street.sidewalk_left, -1, street.park_left),
                               (street.sidewalk_right, 1, street.park_right)):
    if park:  # Parks: more trees and bushes on the grass.
      for _ in range(rng.integers(2, 7)):
        draw = _draw_tree if rng.uniform() < 0.6 else _draw_bush
        add(_sample_depth(rng, cam), edge + outwards * rng.uniform(1.0, 12.0),
            draw)
    elif rng.uniform() < 0.4:  # A hedge in front of a building.
      add(_sample_depth(rng, cam), edge - outwards * 0.7, _draw_bush)
  return plan


def _draw_void(canvas: _Canvas, rng: np.random.Generator) -> None:
  """Ego-vehicle hood at the bottom and/or a black border strip (void)."""
  size = canvas.size
  if rng.uniform() < HOOD_PROBABILITY:
    height = rng.uniform(*HOOD_HEIGHT_RANGE) * size
    centre = rng.uniform(0.4, 0.6) * size
    paint = _jitter(rng, HOOD_COLOR)
    win = _window(size, size - height, size, 0, size)
    if win is not None:
      curve = ((win.cols - centre) / (size / 2)) ** 2
      mask = win.rows > size - height * (1 - 0.5 * curve)
      # A soft reflection across the hood: shading within the void class.
      gloss = np.exp(-((win.rows - (size - 0.6 * height)) /
                       (0.2 * height)) ** 2)
      canvas.fill(win, mask, VOID, paint + 60 * gloss[..., None],
                  Texture.SMOOTH)
  if rng.uniform() < BORDER_PROBABILITY:
    width = max(1.0, rng.uniform(*BORDER_WIDTH_RANGE) * size)
    where = rng.integers(3)  # Bottom, left or right.
    box = ((size - width, size, 0, size), (0, size, 0, width),
           (0, size, size - width, size))[where]
    canvas.fill(_window(size, *box), True, VOID, BORDER_COLOR, Texture.BLACK)


def render_scene(rng: np.random.Generator,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
  """Renders one random street scene.

  The layout is drawn from `rng` and each part of the scene (sky, ground,
  each facade, each object, ...) from its own child generator, so the number
  of pixels never changes what is drawn: the same generator state gives the
  same scene at every size, only the pixel grain differs.

  Args:
    rng: the only source of randomness; the same state gives the same scene.
    size: height and width in pixels.

  Returns:
    image: uint8 RGB [size, size, 3].
    label: uint8 [size, size] ids of `CITYSCAPES_CATEGORIES`.
  """
  canvas = _Canvas.empty(rng, size)
  cam = _Camera(size=size,
                horizon=rng.uniform(*HORIZON_RANGE) * size,
                vanish_x=rng.uniform(*VANISH_X_RANGE) * size,
                focal=rng.uniform(*FOCAL_RANGE) * size)
  street = _sample_street(rng)

  _draw_sky(canvas, _child(rng), cam)
  _draw_skyline(canvas, _child(rng), cam)
  _draw_ground(canvas, _child(rng), cam, street)
  for facade, park in ((street.sidewalk_left, street.park_left),
                       (street.sidewalk_right, street.park_right)):
    facade_rng = _child(rng)
    if not park:
      _draw_facades(canvas, facade_rng, cam, facade)
  plan = _plan_objects(_child(rng), cam, street)
  for depth, x, draw, object_rng in sorted(plan, key=lambda item: -item[0]):
    draw(canvas, object_rng, cam, x, depth)  # Far to near: near ones occlude.
  _draw_void(canvas, _child(rng))
  return canvas.finish()
