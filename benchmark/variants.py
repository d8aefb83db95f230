"""Named ablation variants: each is a model name plus `maskvim.build_model` / loss switches.

No variant forks model code: a variant only sets switches of docs/ARCHITECTURE.md. The rows of the
paper's Tables 6-8, Fig. 5 (a) and Fig. 6 each name one variant (the `variant` column of
benchmark/paper/table{6,7,8}_*.csv, FIGURE_VARIANTS here); `mask_form_paper` is our own extra row.

Several rows describe the same configuration (Tab. 6's "+Block part. / Mask_D", Tab. 7's
"(0.5, 0.5, 0.5)" and MaskViM rows, Tab. 8's last row, Fig. 5 (a)'s lambda 0.5, Fig. 6's "with mask"
are all MaskViM's defaults). `cell_of(name)` maps each name to the one training cell that serves
it, keyed by the canonical switches (defaults dropped, per-stage values that are all equal folded
to one), so a configuration is trained once and shared by every table and figure that contains it.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Mapping

from benchmark import models

# The model an ablation runs when its variant does not name one (MaskViM's own ablations).
ABLATION_MODEL = "maskvim"

# The switches of docs/ARCHITECTURE.md that define an ablation configuration; their defaults are the
# model family's (benchmark.models) and do not depend on the size. Switches that only set sizes or the
# recipe (crop_size, drop paths, scan_backend, pretrained ...) come from the preset, never from a variant.
ABLATION_SWITCHES: tuple[str, ...] = ("encoder_mask_stages", "mask_lambda", "decoder", "mask_d_depths",
                                      "alpha1", "alpha2", "mask_losses", "mask_form")


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    model: str | None            # None: whichever model the grid runs (only "default")
    switches: Mapping[str, Any]  # keyword arguments for maskvim.build_model
    description: str

    def build_kwargs(self) -> dict[str, Any]:
        """The switches as build_model keyword arguments (a fresh dict)."""
        return dict(self.switches)


def _canonical_value(key: str, value: Any) -> Any:
    if key == "mask_losses":
        return tuple(sorted(value))
    if key == "mask_lambda" and isinstance(value, (tuple, list)):
        values = tuple(float(v) for v in value)
        return values[0] if len(set(values)) == 1 else values
    if key in ("alpha1", "alpha2", "mask_lambda"):
        return float(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def canonical_switches(model: str, switches: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Ablation switches with the model's defaults dropped and equivalent spellings unified, sorted by name.
    The defaults of ablation switches are the same at every size, so the family's first size stands for all."""
    defaults = models.default_switches(model, models.model_sizes(model)[0])
    out = []
    for key in sorted(switches):
        value = _canonical_value(key, switches[key])
        if key in defaults and _canonical_value(key, defaults[key]) == value:
            continue
        out.append((key, value))
    return tuple(out)


def _variants() -> dict[str, Variant]:
    v: list[Variant] = [Variant("default", None, {}, "the model with the paper's defaults")]

    def add(name: str, model: str, description: str, **switches: Any) -> None:
        stray = sorted(set(switches) - set(ABLATION_SWITCHES))
        if stray:
            raise ValueError(f"variant {name!r}: {stray} are no ablation switches {ABLATION_SWITCHES}")
        v.append(Variant(name, model, MappingProxyType(switches), description))

    # Table 6: mask in the encoder (under a Linear head) and in the decoder
    add("linear_baseline", "vmamba_linear", "VMamba + Linear head, no masks")
    add("linear_block_all", "vmamba_linear", "+Block all.: encoder masks in stages 1-4, Linear head",
        encoder_mask_stages=(1, 2, 3, 4))
    add("linear_block_part", "vmamba_linear", "+Block part.: encoder masks in stages 1-3, Linear head",
        encoder_mask_stages=(1, 2, 3))
    add("decoder_no_mask", "maskvim", "-mask: Mask_D without its masks", decoder="no_mask")
    add("decoder_vss", "maskvim", "-All.: multi-scale aggregation replaced by plain VSS blocks (no masks)",
        decoder="vss")
    # Table 7: per-stage lambda, Mask_D depths, loss weights
    for lam in ((0.9, 0.7, 0.5), (0.8, 0.6, 0.4), (0.5, 0.7, 0.9), (0.4, 0.6, 0.8), (0.5, 0.5, 0.5)):
        add("lambda_stage_" + "_".join(f"{x:g}" for x in lam), "maskvim",
            f"kept-fraction target lambda per encoder stage {lam}", mask_lambda=lam)
    for depths in ((2, 2, 2), (1, 2, 2), (1, 1, 2)):
        add("mask_d_depths_" + "_".join(map(str, depths)), "maskvim",
            f"MVSS blocks per Mask_D lateral (stages 1-3) {depths}", mask_d_depths=depths)
    for a1, a2 in ((20.0, 10.0), (10.0, 5.0), (5.0, 1.0)):
        add(f"alpha_{a1:g}_{a2:g}", "maskvim", f"alpha1 = {a1:g} (ratio loss), alpha2 = {a2:g} (position loss)",
            alpha1=a1, alpha2=a2)
    # Table 8: loss combinations (CE keeps the 0.4-weighted auxiliary CE of the recipe)
    add("loss_ce", "maskvim", "CE only: no mask ratio or position loss", mask_losses=())
    add("loss_ce_ratio", "maskvim", "CE + L_m^r", mask_losses=("ratio",))
    add("loss_ce_position", "maskvim", "CE + L_m^p", mask_losses=("position",))
    # Fig. 5 (a): uniform lambda
    for lam in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        add(f"lambda_{lam:g}", "maskvim", f"uniform kept-fraction target lambda = {lam:g}", mask_lambda=lam)
    # Fig. 6: without mask anywhere (design §3)
    add("without_mask", "maskvim", "no encoder masks, Mask_D without masks, CE + aux only",
        encoder_mask_stages=(), decoder="no_mask", mask_losses=())
    # our extra row: Eq. 9's mask form instead of the authors' code
    add("mask_form_paper", "maskvim", "mask applied as f * m (paper Eq. 9) instead of f * (1 + m)",
        mask_form="paper")
    return {x.name: x for x in v}


VARIANTS: Mapping[str, Variant] = MappingProxyType(_variants())

# Fig. 5 (a) and Fig. 6 (Tab. 6-8 rows are listed in the paper CSVs' `variant` column).
FIGURE_VARIANTS: Mapping[int, tuple[str, ...]] = MappingProxyType({
    5: tuple(f"lambda_{x:g}" for x in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)),
    6: ("without_mask", "default"),
})
# Rows we add to a paper table (table -> variant names), shown with the paper's cells as dashes.
EXTRA_TABLE_ROWS: Mapping[int, tuple[str, ...]] = MappingProxyType({7: ("mask_form_paper",)})


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None


def variant_model(name: str, model: str | None = None) -> str:
    """The model a variant trains: its own, else `model`, else MaskViM (the ablations' subject)."""
    v = get_variant(name)
    if v.model is not None and model is not None and model != v.model:
        raise ValueError(f"variant {name!r} is defined for model {v.model!r}, not {model!r}")
    return v.model or model or ABLATION_MODEL


def canonical_key(name: str, model: str | None = None) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """(model, canonical switches): two names with equal keys are the same training cell."""
    m = variant_model(name, model)
    return m, canonical_switches(m, get_variant(name).switches)


def cell_of(name: str, model: str | None = None) -> tuple[str, str]:
    """(model, variant name) of the training cell that serves `name`.

    A configuration equal to the model's defaults is the cell "default"; otherwise the first
    registered variant with the same canonical key (registration order is fixed in this file).
    """
    key = canonical_key(name, model)
    if not key[1]:
        return key[0], "default"
    for other in VARIANTS:
        if other != "default" and VARIANTS[other].model in (None, key[0]) and canonical_key(other, key[0]) == key:
            return key[0], other
    raise AssertionError(f"unreachable: {name!r} is registered")  # `name` itself matches


def distinct_cells(names: list[str] | tuple[str, ...], model: str | None = None) -> list[tuple[str, str]]:
    """The distinct (model, cell variant) pairs that serve `names`, in first-seen order."""
    seen: dict[tuple[str, str], None] = {}
    for name in names:
        seen.setdefault(cell_of(name, model), None)
    return list(seen)
