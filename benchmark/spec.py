"""The typed job spec: one frozen, validated record of everything a training job is, from the CLI to the loss.

    JobSpec(preset, model=ModelSpec(name, size, switches), variant, source, seed,
            data=DataSpec, optim=OptimSpec, schedule=ScheduleSpec, eval=EvalSpec,
            complexity_input, numerics, runtime=RuntimeSpec)

``JobSpec.from_preset`` resolves a preset, a model and a variant into it; ``to_dict`` is the config every
result file stores (``config``, schema version 1) and ``from_dict`` reads one back (``from_dict(to_dict())``
is the identity). ``hash`` covers everything but ``runtime`` (workers, checkpoint interval, data location,
how the global batch is split over devices): a cell resumed on other hardware still matches. ``numerics``
(benchmark.numerics: ``portable`` or ``native``) is hashed: the two modes give different numbers; a config
stored before the field existed reads back as ``native``, what produced it. Every size is
(H, W). A switch value travels unchanged from the variant / preset through ``ModelSpec.switches`` to
``build_model(**job.model.kwargs())``, e.g. ``mask_lambda`` to the model's ratio loss.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

from benchmark import models
from benchmark.data.labels import LABEL_MAPPING
from benchmark.numerics import check_mode
from benchmark.presets import Preset, gradient_accumulation, pretrained_file, validate
from benchmark.results import config_hash
from benchmark.settings import DATASET_IDS

NO_DECAY = "norm layers and _no_weight_decay params"
FINAL_CHECKPOINT = "fixed iteration (never selected on a target)"
EVAL_MODE = "whole image, single scale"
MIOU_CONVENTION = "mmseg (class counted if in GT or prediction)"


def _frozen(v: Any) -> Any:
    """JSON-like value with lists turned into tuples, at any depth (dicts stay dicts, with str keys)."""
    if isinstance(v, (list, tuple)):
        return tuple(_frozen(x) for x in v)
    if isinstance(v, dict):
        return {str(k): _frozen(x) for k, x in v.items()}
    return v


def _json(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    return v


def _hw(v: Any, name: str) -> tuple[int, int]:
    hw = tuple(v)
    if len(hw) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in hw):
        raise ValueError(f"{name} must be (height, width) of positive integers, got {v!r}")
    return hw


class _Section:
    """to_dict / from_dict of a flat dataclass section (tuples stored as lists)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str):
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"config[{where!r}]: unknown keys {unknown}; known: {names}")
        try:
            return cls(**{k: _frozen(v) for k, v in d.items()})
        except TypeError as e:
            raise ValueError(f"config[{where!r}]: {e}") from None


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model at a size with the switches that differ from or pin its defaults."""
    name: str
    size: str
    switches: dict[str, Any] = dataclasses.field(default_factory=dict)   # JSON-like values, tuples for lists

    def __post_init__(self):
        models.get_family(self.name).check_size(self.size)
        object.__setattr__(self, "switches", _frozen(dict(self.switches)))

    def kwargs(self) -> dict[str, Any]:
        """build_model keyword arguments (a fresh dict)."""
        return dict(self.switches)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "switches": _json(self.switches)}


@dataclasses.dataclass(frozen=True)
class DataSpec(_Section):
    train_split: str
    label_mapping: str
    crop_size: tuple[int, int]           # (H, W) training crop
    base_scale: tuple[int, int]          # (H, W) that the random rescale ratios multiply
    ratio_range: tuple[float, float]
    synthetic_manifest_sha256: str | None = None   # identity of generated data (hashed; real data: none)

    def __post_init__(self):
        _hw(self.crop_size, "crop_size")
        _hw(self.base_scale, "base_scale")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if d["synthetic_manifest_sha256"] is None:
            del d["synthetic_manifest_sha256"]
        return d


@dataclasses.dataclass(frozen=True)
class OptimSpec(_Section):
    name: str
    lr: float
    betas: tuple[float, float]
    weight_decay: float
    no_decay: str
    mask_lr_mult: float                  # learning-rate multiplier of the `*mask_logits` parameters


@dataclasses.dataclass(frozen=True)
class ScheduleSpec(_Section):
    iterations: int
    batch_size: int                      # global images per optimizer step
    warmup: str
    warmup_iters: int
    warmup_ratio: float
    policy: str
    poly_power: float
    min_lr: float
    final_checkpoint: str


@dataclasses.dataclass(frozen=True)
class EvalSpec(_Section):
    short_side: int
    mode: str
    resize_logits_to_label: bool
    severities: tuple[int, ...]
    miou: str


@dataclasses.dataclass(frozen=True)
class RuntimeSpec(_Section):
    """What cannot change a number (left out of the hash)."""
    data_root: str
    workers: int
    checkpoint_interval: int
    world_size: int
    batch_per_device: int
    pretrained_dir: str | None
    grad_accumulation: int


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """One training job; every result cell it feeds stores `to_dict()` as its config."""
    preset: str
    model: ModelSpec
    variant: str
    source: str
    seed: int
    data: DataSpec
    optim: OptimSpec
    schedule: ScheduleSpec
    eval: EvalSpec
    complexity_input: tuple[int, int] | None
    numerics: str
    runtime: RuntimeSpec

    def __post_init__(self):
        check_mode(self.numerics)
        if self.source not in DATASET_IDS:
            raise ValueError(f"unknown source dataset {self.source!r}; valid ids: {', '.join(DATASET_IDS)}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.complexity_input is not None:
            object.__setattr__(self, "complexity_input", _hw(self.complexity_input, "complexity_input"))

    # ---- identity ------------------------------------------------------------------------------
    @property
    def size(self) -> str:
        return self.model.size

    @functools.cached_property
    def hash(self) -> str:
        """Hash of everything that can change a number (the config without its 'runtime' part); computed once."""
        return config_hash({k: v for k, v in self.to_dict().items() if k != "runtime"})

    @property
    def id(self) -> str:
        return f"{self.model.name}-{self.size}__{self.variant}__{self.source}__seed{self.seed}__{self.hash}"

    # ---- the stored config ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "model": self.model.to_dict(), "variant": self.variant,
                "source": self.source, "seed": self.seed, "data": self.data.to_dict(),
                "optim": self.optim.to_dict(), "schedule": self.schedule.to_dict(), "eval": self.eval.to_dict(),
                "complexity_input": None if self.complexity_input is None else list(self.complexity_input),
                "numerics": self.numerics, "runtime": self.runtime.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> "JobSpec":
        """Read a stored config back (a ValueError names `where` and the bad key)."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing, unknown = sorted(set(names) - set(d) - {"numerics"}), sorted(set(d) - set(names))
        if missing or unknown:
            raise ValueError(f"{where}: not a job config (missing {missing}, unknown {unknown})")
        m = d["model"]
        return cls(preset=d["preset"], model=ModelSpec(m["name"], m["size"], m.get("switches", {})),
                   variant=d["variant"], source=d["source"], seed=d["seed"],
                   data=DataSpec.from_dict(d["data"], "data"), optim=OptimSpec.from_dict(d["optim"], "optim"),
                   schedule=ScheduleSpec.from_dict(d["schedule"], "schedule"),
                   eval=EvalSpec.from_dict(d["eval"], "eval"), complexity_input=d["complexity_input"],
                   numerics=d.get("numerics", "native"), runtime=RuntimeSpec.from_dict(d["runtime"], "runtime"))

    # ---- resolution from a preset --------------------------------------------------------------
    @classmethod
    def from_preset(cls, preset: Preset, *, model: str, source: str, seed: int, variant: str = "default",
                    switches: dict[str, Any] | None = None, world_size: int = 1, data_root: str | None = None,
                    data_digest: str | None = None) -> "JobSpec":
        """The job of `model` (with the variant's `switches`) trained on `source` with `seed` under `preset`.

        The preset's crop (a mask grid) and scan backend become switches of the families that have them;
        `data_digest` (benchmark.data.synthetic.manifest_digest) is the identity of generated data."""
        validate(preset)
        accepted = models.default_switches(model, preset.size)   # also checks model and size
        recipe = {"crop_size": preset.crop_size, "scan_backend": preset.scan_backend}
        model_switches = {**{k: v for k, v in recipe.items() if k in accepted},
                          **dict(preset.model_switches), **(switches or {})}
        pretrained = pretrained_file(preset, model, preset.size)
        if pretrained is not None:
            model_switches["pretrained"] = pretrained   # the file name; its folder is runtime.pretrained_dir
        return cls(
            preset=preset.name, model=ModelSpec(model, preset.size, model_switches), variant=variant,
            source=source, seed=seed,
            data=DataSpec("train", LABEL_MAPPING, preset.crop_size, preset.base_scale, preset.ratio_range,
                          data_digest or None),
            optim=OptimSpec("AdamW", preset.lr, preset.betas, preset.weight_decay, NO_DECAY, preset.mask_lr_mult),
            schedule=ScheduleSpec(preset.iterations, preset.batch_size, "linear", preset.warmup_iters,
                                  preset.warmup_ratio, "poly", preset.poly_power, preset.min_lr, FINAL_CHECKPOINT),
            eval=EvalSpec(preset.eval_short_side, EVAL_MODE, True, preset.severities, MIOU_CONVENTION),
            complexity_input=preset.complexity_input, numerics=preset.numerics,
            runtime=RuntimeSpec(data_root if data_root is not None else preset.data_root, preset.workers,
                                preset.checkpoint_interval, world_size, preset.batch_per_device,
                                preset.pretrained_dir,
                                gradient_accumulation(preset.batch_size, preset.batch_per_device, world_size)))
