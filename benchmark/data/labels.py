"""Label conversion: each dataset's raw label ids -> the 19 Cityscapes train ids (255 = ignore).

One `LabelSpec` per dataset id holds a lookup table from raw id to train id plus the set of raw ids the
dataset defines; a raw value outside that set is an error naming the file and the values, never silently
ignored. `encode` is the inverse (train id -> one raw id), used by the synthetic writer so the stand-ins go
through exactly the same conversion as the real data.

Mappings (design §4):
- cityscapes: labelIds -> trainIds from `cityscapesscripts.helpers.labels` (ids 0..33; 255 is accepted as
  the uint8 form of the license-plate id -1, which is ignore).
- gtav: the same Cityscapes label ids (its label PNGs are palette images whose indices are those ids).
- synthia (RAND-CITYSCAPES): its own 23 ids (0 void .. 22 lane marking) from the dataset's README, with
  RobustNet's table (datasets/synthia.py): parking-slot, road-work, lane marking and void are ignored. The
  release has no terrain, truck or train pixels; ids 16 / 18 / 20 still map to them as in RobustNet.
- mapillary (Vistas v1.2, 66 ids 0..65): RobustNet's mapping (datasets/mapillary.py), which folds curb into
  sidewalk, lane marking and manhole into road, utility pole into pole, the three rider classes into rider
  and "on rails" into train; the other 44 ids are ignored. (The other mapping in circulation, e.g. in
  SAW/WildNet forks, differs on curb / lane marking; results record LABEL_MAPPING = "robustnet".)
- bdd: labels are already train ids; only 0..18 and 255 are valid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.data.classes import IGNORE_INDEX, NUM_CLASSES

DATASET_IDS: tuple[str, ...] = ("cityscapes", "bdd", "mapillary", "gtav", "synthia")
# The name every result records for the label mapping (config["data"]["label_mapping"]): Cityscapes / GTAV
# labelIds -> trainIds (cityscapesscripts); Mapillary v1.2 66 -> 19 and SYNTHIA (16 classes) as in RobustNet;
# BDD100K train ids.
LABEL_MAPPING = "robustnet"


class LabelValueError(ValueError):
    """A label file holds values outside its dataset's id set."""


@dataclass(frozen=True)
class LabelSpec:
    dataset_id: str
    raw_to_train: dict[int, int]            # every valid raw id -> train id (0..18 or 255)
    train_to_raw: dict[int, int]            # every train id the dataset has, plus 255 -> one raw id
    raw_dtype: type = np.uint8              # uint16 for SYNTHIA
    _lut: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        size = int(np.iinfo(self.raw_dtype).max) + 1
        lut = np.full(size, -1, dtype=np.int16)  # -1 marks ids the dataset does not define
        for raw, train in self.raw_to_train.items():
            lut[raw] = train
        object.__setattr__(self, "_lut", lut)

    @property
    def valid_raw_ids(self) -> frozenset[int]:
        return frozenset(self.raw_to_train)

    @property
    def train_ids(self) -> tuple[int, ...]:
        """The train ids this dataset can contain (SYNTHIA lacks terrain, truck and train)."""
        return tuple(sorted(t for t in self.train_to_raw if t != IGNORE_INDEX))

    def to_train_ids(self, raw: np.ndarray, source: str | Path = "<array>") -> np.ndarray:
        """Map raw ids (H, W) to uint8 train ids; raise LabelValueError naming `source` on unknown ids."""
        raw = np.asarray(raw)
        if raw.dtype.kind not in "ui":
            raise TypeError(f"{source}: label array must be integer, got {raw.dtype}")
        if raw.size and (raw.min() < 0 or raw.max() >= self._lut.size):
            bad = np.unique(raw[(raw < 0) | (raw >= self._lut.size)])
            raise LabelValueError(_bad_values_message(self.dataset_id, source, bad))
        mapped = self._lut[raw.astype(np.intp, copy=False)]
        if raw.size and mapped.min() < 0:
            raise LabelValueError(_bad_values_message(self.dataset_id, source, np.unique(raw[mapped < 0])))
        return mapped.astype(np.uint8)

    def encode(self, train_ids: np.ndarray) -> np.ndarray:
        """Inverse map: train ids (0..18 / 255) -> raw ids of this dataset (dtype `raw_dtype`).

        Train ids the dataset lacks (SYNTHIA's terrain / truck / train) become the dataset's void id, as
        they would in a real annotation of such a scene.
        """
        train_ids = np.asarray(train_ids)
        bad = np.setdiff1d(np.unique(train_ids), np.r_[np.arange(NUM_CLASSES), IGNORE_INDEX])
        if bad.size:
            raise LabelValueError(f"train ids must be 0..{NUM_CLASSES - 1} or {IGNORE_INDEX}; got {bad.tolist()}")
        void = self.train_to_raw[IGNORE_INDEX]
        lut = np.full(256, void, dtype=np.int64)
        for train, raw in self.train_to_raw.items():
            lut[train] = raw
        return lut[train_ids.astype(np.intp)].astype(self.raw_dtype)


def _bad_values_message(dataset_id: str, source: str | Path, bad: np.ndarray) -> str:
    shown = bad[:20].tolist()
    more = f" (+{bad.size - 20} more)" if bad.size > 20 else ""
    return (f"{source}: label values {shown}{more} are not {dataset_id} label ids "
            f"(wrong dataset, wrong file, or a corrupted label?)")


def _cityscapes_spec(dataset_id: str) -> LabelSpec:
    from cityscapesscripts.helpers.labels import labels as cs_labels

    raw_to_train: dict[int, int] = {}
    train_to_raw: dict[int, int] = {IGNORE_INDEX: 0}  # 0 = "unlabeled"
    for label in cs_labels:
        if label.id < 0:  # license plate (-1) is stored as 255 in uint8 label images
            raw_to_train[255] = IGNORE_INDEX
            continue
        train = label.trainId if 0 <= label.trainId < NUM_CLASSES else IGNORE_INDEX
        raw_to_train[label.id] = train
        if train != IGNORE_INDEX:
            train_to_raw.setdefault(train, label.id)
    return LabelSpec(dataset_id, raw_to_train, train_to_raw)


# SYNTHIA RAND-CITYSCAPES ids (dataset README) -> Cityscapes train ids, following RobustNet.
_SYNTHIA_TO_TRAIN = {
    0: IGNORE_INDEX,   # void
    1: 10,             # sky
    2: 2,              # building
    3: 0,              # road
    4: 1,              # sidewalk
    5: 4,              # fence
    6: 8,              # vegetation
    7: 5,              # pole
    8: 13,             # car
    9: 7,              # traffic sign
    10: 11,            # pedestrian -> person
    11: 18,            # bicycle
    12: 17,            # motorcycle
    13: IGNORE_INDEX,  # parking-slot
    14: IGNORE_INDEX,  # road-work
    15: 6,             # traffic light
    16: 9,             # terrain (absent from the release)
    17: 12,            # rider
    18: 14,            # truck (absent from the release)
    19: 15,            # bus
    20: 16,            # train (absent from the release)
    21: 3,             # wall
    22: IGNORE_INDEX,  # lane marking
}
SYNTHIA_ABSENT_TRAIN_IDS = (9, 14, 16)

# Mapillary Vistas v1.2 ids -> Cityscapes train ids, RobustNet's mapping; unlisted ids are ignored.
_MAPILLARY_TO_TRAIN = {
    13: 0, 24: 0, 41: 0,   # road, lane marking - general, manhole
    2: 1, 15: 1,           # curb, sidewalk
    17: 2,                 # building
    6: 3,                  # wall
    3: 4,                  # fence
    45: 5, 47: 5,          # pole, utility pole
    48: 6,                 # traffic light
    50: 7,                 # traffic sign (front)
    30: 8,                 # vegetation
    29: 9,                 # terrain
    27: 10,                # sky
    19: 11,                # person
    20: 12, 21: 12, 22: 12,  # bicyclist, motorcyclist, other rider
    55: 13,                # car
    61: 14,                # truck
    54: 15,                # bus
    58: 16,                # on rails
    57: 17,                # motorcycle
    52: 18,                # bicycle
}
MAPILLARY_NUM_IDS = 66
MAPILLARY_UNLABELED_ID = 65


def _synthia_spec() -> LabelSpec:
    train_to_raw = {IGNORE_INDEX: 0}
    for raw, train in sorted(_SYNTHIA_TO_TRAIN.items()):
        if train != IGNORE_INDEX and train not in SYNTHIA_ABSENT_TRAIN_IDS:
            train_to_raw.setdefault(train, raw)
    return LabelSpec("synthia", dict(_SYNTHIA_TO_TRAIN), train_to_raw, raw_dtype=np.uint16)


def _mapillary_spec() -> LabelSpec:
    raw_to_train = {raw: _MAPILLARY_TO_TRAIN.get(raw, IGNORE_INDEX) for raw in range(MAPILLARY_NUM_IDS)}
    # The first listed raw id of each class is its canonical encoding (road 13, sidewalk 15, ...).
    canonical = {0: 13, 1: 15, 12: 20, 5: 45}
    train_to_raw = {IGNORE_INDEX: MAPILLARY_UNLABELED_ID}
    for raw, train in _MAPILLARY_TO_TRAIN.items():
        train_to_raw.setdefault(train, canonical.get(train, raw))
    return LabelSpec("mapillary", raw_to_train, train_to_raw)


def _bdd_spec() -> LabelSpec:
    identity = {t: t for t in range(NUM_CLASSES)}
    return LabelSpec("bdd", {**identity, IGNORE_INDEX: IGNORE_INDEX}, {**identity, IGNORE_INDEX: IGNORE_INDEX})


_SPECS: dict[str, LabelSpec] = {}


def label_spec(dataset_id: str) -> LabelSpec:
    """The LabelSpec of a dataset id (cached)."""
    if dataset_id not in DATASET_IDS:
        raise ValueError(f"unknown dataset id {dataset_id!r}; expected one of {', '.join(DATASET_IDS)}")
    if dataset_id not in _SPECS:
        builders = {"cityscapes": lambda: _cityscapes_spec("cityscapes"), "gtav": lambda: _cityscapes_spec("gtav"),
                    "synthia": _synthia_spec, "mapillary": _mapillary_spec, "bdd": _bdd_spec}
        _SPECS[dataset_id] = builders[dataset_id]()
    return _SPECS[dataset_id]


def to_train_ids(dataset_id: str, raw: np.ndarray, source: str | Path = "<array>") -> np.ndarray:
    return label_spec(dataset_id).to_train_ids(raw, source)


def encode_train_ids(dataset_id: str, train_ids: np.ndarray) -> np.ndarray:
    return label_spec(dataset_id).encode(train_ids)
