"""The official Cityscapes labels and SPG-Net's two ways of grouping them.

Cityscapes' `*_gtFine_labelIds.png` files hold the 34 labelIds below. SPG-Net
groups them into the 8 official categories (`CITYSCAPES_CATEGORIES`, the
paper's setting); the 19 trainIds of the Cityscapes benchmark, with every
other labelId gathered into a 20th class 'void', are the finer alternative
(`CITYSCAPES_TRAIN_IDS`). Both tables name 'void' as their `void` class, so
evaluation scores no pixel whose true class is void, as the benchmark does.
The values are those of the official definitions
(`cityscapesscripts.helpers.labels`); a test checks them against that package.
"""

import dataclasses

from spg_jax.data import labelling

# The trainId of labelIds left out of the benchmark, as in the official table.
IGNORED_TRAIN_ID = 255


@dataclasses.dataclass(frozen=True)
class CityscapesLabel:
  name: str
  label_id: int
  train_id: int
  category_id: int
  color: tuple[int, int, int]


LABELS = (
    CityscapesLabel("unlabeled", 0, 255, 0, (0, 0, 0)),
    CityscapesLabel("ego vehicle", 1, 255, 0, (0, 0, 0)),
    CityscapesLabel("rectification border", 2, 255, 0, (0, 0, 0)),
    CityscapesLabel("out of roi", 3, 255, 0, (0, 0, 0)),
    CityscapesLabel("static", 4, 255, 0, (0, 0, 0)),
    CityscapesLabel("dynamic", 5, 255, 0, (111, 74, 0)),
    CityscapesLabel("ground", 6, 255, 0, (81, 0, 81)),
    CityscapesLabel("road", 7, 0, 1, (128, 64, 128)),
    CityscapesLabel("sidewalk", 8, 1, 1, (244, 35, 232)),
    CityscapesLabel("parking", 9, 255, 1, (250, 170, 160)),
    CityscapesLabel("rail track", 10, 255, 1, (230, 150, 140)),
    CityscapesLabel("building", 11, 2, 2, (70, 70, 70)),
    CityscapesLabel("wall", 12, 3, 2, (102, 102, 156)),
    CityscapesLabel("fence", 13, 4, 2, (190, 153, 153)),
    CityscapesLabel("guard rail", 14, 255, 2, (180, 165, 180)),
    CityscapesLabel("bridge", 15, 255, 2, (150, 100, 100)),
    CityscapesLabel("tunnel", 16, 255, 2, (150, 120, 90)),
    CityscapesLabel("pole", 17, 5, 3, (153, 153, 153)),
    CityscapesLabel("polegroup", 18, 255, 3, (153, 153, 153)),
    CityscapesLabel("traffic light", 19, 6, 3, (250, 170, 30)),
    CityscapesLabel("traffic sign", 20, 7, 3, (220, 220, 0)),
    CityscapesLabel("vegetation", 21, 8, 4, (107, 142, 35)),
    CityscapesLabel("terrain", 22, 9, 4, (152, 251, 152)),
    CityscapesLabel("sky", 23, 10, 5, (70, 130, 180)),
    CityscapesLabel("person", 24, 11, 6, (220, 20, 60)),
    CityscapesLabel("rider", 25, 12, 6, (255, 0, 0)),
    CityscapesLabel("car", 26, 13, 7, (0, 0, 142)),
    CityscapesLabel("truck", 27, 14, 7, (0, 0, 70)),
    CityscapesLabel("bus", 28, 15, 7, (0, 60, 100)),
    CityscapesLabel("caravan", 29, 255, 7, (0, 0, 90)),
    CityscapesLabel("trailer", 30, 255, 7, (0, 0, 110)),
    CityscapesLabel("train", 31, 16, 7, (0, 80, 100)),
    CityscapesLabel("motorcycle", 32, 17, 7, (0, 0, 230)),
    CityscapesLabel("bicycle", 33, 18, 7, (119, 11, 32)),
)

# The 8 categories in the order of their official ids. Each colour is that of
# the category's most common label (road for flat, building for
# construction, ...).
CITYSCAPES_CATEGORIES = labelling.ClassTable(
    names=(
        "void",
        "flat",
        "construction",
        "object",
        "nature",
        "sky",
        "human",
        "vehicle",
    ),
    colors=(
        (0, 0, 0),
        (128, 64, 128),
        (70, 70, 70),
        (153, 153, 153),
        (107, 142, 35),
        (70, 130, 180),
        (220, 20, 60),
        (0, 0, 142),
    ),
    void="void",
)

_BENCHMARK_LABELS = sorted(
    (label for label in LABELS if label.train_id != IGNORED_TRAIN_ID),
    key=lambda label: label.train_id,
)

# The 19 benchmark classes in trainId order, then 'void' (id 19) for the rest.
CITYSCAPES_TRAIN_IDS = labelling.ClassTable(
    names=tuple(label.name for label in _BENCHMARK_LABELS) + ("void",),
    colors=tuple(label.color for label in _BENCHMARK_LABELS) + ((0, 0, 0),),
    void="void",
)
VOID_TRAIN_CLASS = CITYSCAPES_TRAIN_IDS.void_id

LABEL_IDS_TO_CATEGORIES = labelling.LabelMap(
    classes="cityscapes_categories",
    targets=tuple((label.label_id, label.category_id) for label in LABELS),
)

LABEL_IDS_TO_TRAIN_IDS = labelling.LabelMap(
    classes="cityscapes_train_ids",
    targets=tuple(
        (
            label.label_id,
            VOID_TRAIN_CLASS
            if label.train_id == IGNORED_TRAIN_ID
            else label.train_id,
        )
        for label in LABELS
    ),
)
