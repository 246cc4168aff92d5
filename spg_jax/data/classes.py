"""The registry of class tables and label maps that configs name.

`config.data.classes` names a class table here and `config.data.label_map` a
label map (or None when the dataset already stores class ids). The tables
without an official palette get `labelling.distinct_colors`.
"""

from spg_jax.data import cityscapes_labels
from spg_jax.data import labelling

# Helen face parsing (Smith et al., CVPR 2013): the classes of the label
# files `<name>_lbl00.png` ... `<name>_lbl10.png`, in that order. No void:
# every pixel takes the class of its strongest map, and background is a
# labelled class like the others.
HELEN = labelling.ClassTable(
    names=(
        "background",
        "face skin",
        "left eyebrow",
        "right eyebrow",
        "left eye",
        "right eye",
        "nose",
        "upper lip",
        "inner mouth",
        "lower lip",
        "hair",
    ),
    colors=(
        (0, 0, 0),
        (255, 204, 153),
        (102, 51, 0),
        (153, 76, 0),
        (0, 102, 204),
        (0, 153, 255),
        (255, 128, 0),
        (204, 0, 51),
        (102, 0, 102),
        (255, 51, 102),
        (64, 32, 16),
    ),
)

# TFDS oxford_iiit_pet's `segmentation_mask`: a trimap storing 1 = pet,
# 2 = background, 3 = the uncertain outline between them. The outline is
# void: the dataset calls it "not classified", a band where the annotators
# left the answer open, so a prediction there is neither right nor wrong.
OXFORD_PET_TRIMAP = labelling.ClassTable(
    names=("background", "pet", "outline"),
    colors=((0, 0, 0), (230, 140, 40), (255, 255, 255)),
    void="outline",
)
OXFORD_PET_TRIMAP_VALUES = labelling.LabelMap(
    classes="oxford_pet_trimap", targets=((2, 0), (1, 1), (3, 2))
)

# TFDS scene_parse150 stores the ADE20K instance annotations of the Places
# Challenge 2017, whose red channel holds one of these 100 object categories
# (CSAILVision/placeschallenge, instanceInfo100_train.txt), 0 elsewhere.
# 'other' (0) is not void: it is mostly walls, floors, sky and roads, a real
# answer for a hole, and leaving it unscored would let object labels painted
# over them go unpunished.
_ADE20K_OBJECTS = (
    "bed", "windowpane", "cabinet", "person", "door", "table", "curtain",
    "chair", "car", "painting", "sofa", "shelf", "mirror", "armchair", "seat",
    "fence", "desk", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "box", "column", "signboard", "chest of drawers", "counter", "sink",
    "fireplace", "refrigerator", "stairs", "case", "pool table", "pillow",
    "screen door", "bookcase", "coffee table", "toilet", "flower", "book",
    "bench", "countertop", "stove", "palm", "kitchen island", "computer",
    "swivel chair", "boat", "arcade machine", "bus", "towel", "light",
    "truck", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "apparel", "pole", "bannister",
    "ottoman", "bottle", "van", "ship", "fountain", "washer", "plaything",
    "stool", "barrel", "basket", "bag", "minibike", "oven", "ball", "food",
    "step", "trade name", "microwave", "pot", "animal", "bicycle",
    "dishwasher", "screen", "sculpture", "hood", "sconce", "vase",
    "traffic light", "tray", "ashcan", "fan", "plate", "monitor",
    "bulletin board", "radiator", "glass", "clock", "flag",
)
ADE20K_OBJECTS = labelling.ClassTable(
    names=("other",) + _ADE20K_OBJECTS,
    colors=((0, 0, 0),) + labelling.distinct_colors(len(_ADE20K_OBJECTS)),
)

CLASS_TABLES = {
    "cityscapes_categories": cityscapes_labels.CITYSCAPES_CATEGORIES,
    "cityscapes_train_ids": cityscapes_labels.CITYSCAPES_TRAIN_IDS,
    "helen": HELEN,
    "oxford_pet_trimap": OXFORD_PET_TRIMAP,
    "ade20k_objects": ADE20K_OBJECTS,
}

LABEL_MAPS = {
    "cityscapes_label_ids_to_categories": (
        cityscapes_labels.LABEL_IDS_TO_CATEGORIES
    ),
    "cityscapes_label_ids_to_train_ids": (
        cityscapes_labels.LABEL_IDS_TO_TRAIN_IDS
    ),
    "oxford_pet_trimap_values": OXFORD_PET_TRIMAP_VALUES,
}


def get_class_table(name: str) -> labelling.ClassTable:
  """Returns the class table registered as `name` (config.data.classes)."""
  try:
    return CLASS_TABLES[name]
  except KeyError:
    raise ValueError(
        f"Unknown class table {name!r} (config.data.classes); known ones:"
        f" {sorted(CLASS_TABLES)}."
    ) from None


def get_label_map(name: str) -> labelling.LabelMap:
  """Returns the label map registered as `name` (config.data.label_map)."""
  try:
    return LABEL_MAPS[name]
  except KeyError:
    raise ValueError(
        f"Unknown label map {name!r} (config.data.label_map); known ones:"
        f" {sorted(LABEL_MAPS)}, or None when the dataset stores class ids."
    ) from None
