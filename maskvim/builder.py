"""MaskViM's registration, and the switches of every model on the VMamba v0 encoder.

``maskvim`` registers here (``maskvim.registry``); the VMamba baselines (``baselines/vmamba``) register
their own names with ``vmamba_defaults`` and ``build_segmentor`` from this module. Build any of them with
``maskvim.build_model(name, size, num_classes=19, **switches)``. Sizes (VMamba v0 widths and depths):

| size  | dims              | depths        | d_state | decoder ch. | aux ch. | encoder drop path |
|-------|-------------------|---------------|---------|-------------|---------|-------------------|
| micro | 32, 64, 128, 256  | 1, 1, 2, 1    | 8       | 64          | 32      | 0.1               |
| tiny  | 96 .. 768         | 2, 2, 9, 2    | 16      | 512         | 256     | 0.3               |
| small | 96 .. 768         | 2, 2, 27, 2   | 16      | 512         | 256     | 0.3               |
| base  | 128 .. 1024       | 2, 2, 27, 2   | 16      | 512         | 256     | 0.3               |

``micro`` is the CPU smoke size, trained from scratch. Its d_state is 8: the selective scan dominates a
CPU step and costs time linearly in d_state (forward and the recomputing backward), and at micro widths
(E = 64 .. 512 scan channels per direction) 8 states per channel keep the SSM's state-to-channel ratio
in the range of the paper sizes' 16 per 192 .. 1536 channels; every other size uses the paper's 16.
Drop path 0.3 is the authors' tiny / small / base config (VMamba's own base segmentation config used
0.5; the authors kept 0.3); the authors' base Mask_D used 256 channels, ours keeps UperNet's 512 (set
``decoder_channels`` to change it). The aux head's width is half the decoder's (256 at 512, mmseg).

Switches (keyword arguments, the paper's defaults; unknown names are rejected, naming them):
- ``encoder_mask_stages``: 1-based stages whose blocks carry masks; maskvim (1, 2, 3) ("+Block part"),
  baselines () ; (1, 2, 3, 4) is "+Block all".
- ``mask_lambda``: target kept fraction, 0.5; a float, one value per masked stage in stage order
  (Tab. 7's (0.9, 0.7, 0.5)), or a {stage: value} mapping.
- ``decoder`` ("mask_d" | "no_mask" | "vss"), ``mask_d_depths`` ((1, 1, 1)), ``decoder_drop_path`` (0.1):
  maskvim only; a baseline given one of them is an error (the registry names the family that has it).
- ``alpha1``, ``alpha2`` (1.0): weights of L_m^r and L_m^p; ``mask_losses``: subset of
  ("ratio", "position"), both by default; "Without mask" (Fig. 6) = encoder_mask_stages=(),
  decoder="no_mask", mask_losses=().
- ``mask_form`` ("authors" f*(1+m) | "paper" f*m), ``crop_size`` ((512, 1024): the training crop, which
  fixes every mask's logit grid), ``drop_path_rate`` (per size), ``dropout`` (0.1 before the classifier),
  ``aux_weight`` (0.4 for maskvim / vmamba_upernet, 0 for vmamba_linear: no aux head),
  ``decoder_channels`` (per size), ``scan_backend`` ("auto"), ``pretrained`` (path to the official VMamba
  v0 checkpoint or None; loaded by ``maskvim.pretrained.load_vmamba_v0_encoder``).

The resolved switches are kept on the model as ``model.config`` (plain JSON-able values). This module
imports no torch: the factories import the model code when they build.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping

from maskvim.registry import register_model

SCAN_BACKENDS = ("auto", "ref", "cpu", "cuda")
MASK_LOSSES = ("ratio", "position")
MASK_GAMMA = 4.0  # U(-gamma, gamma) initialisation of the mask logits (paper: gamma = 4)

SIZES = {
    "micro": dict(dims=(32, 64, 128, 256), depths=(1, 1, 2, 1), d_state=8, decoder_channels=64,
                  drop_path_rate=0.1),
    "tiny": dict(dims=(96, 192, 384, 768), depths=(2, 2, 9, 2), d_state=16, decoder_channels=512,
                 drop_path_rate=0.3),
    "small": dict(dims=(96, 192, 384, 768), depths=(2, 2, 27, 2), d_state=16, decoder_channels=512,
                  drop_path_rate=0.3),
    "base": dict(dims=(128, 256, 512, 1024), depths=(2, 2, 27, 2), d_state=16, decoder_channels=512,
                 drop_path_rate=0.3),
}

# Official VMamba v0 ImageNet checkpoints (file names of the VMamba release), looked up in the
# preset's `pretrained_dir`; only the paper preset uses them.
PRETRAINED_FILES = {
    "tiny": "vssmtiny_dp01_ckpt_epoch_292.pth",
    "small": "vssmsmall_dp03_ckpt_epoch_238.pth",
    "base": "vssmbase_dp06_ckpt_epoch_241.pth",
}


def vmamba_defaults(size: str, *, encoder_mask_stages: tuple[int, ...] = (), aux_weight: float = 0.4) -> dict:
    """The paper's defaults of every model on the VMamba v0 encoder at `size` (encoder, losses, head widths)."""
    spec = SIZES[size]
    return dict(encoder_mask_stages=encoder_mask_stages, mask_lambda=0.5, alpha1=1.0, alpha2=1.0,
                mask_losses=MASK_LOSSES, mask_form="authors", crop_size=(512, 1024),
                drop_path_rate=spec["drop_path_rate"], dropout=0.1, aux_weight=aux_weight,
                decoder_channels=spec["decoder_channels"], scan_backend="auto", pretrained=None)


def maskvim_defaults(size: str) -> dict:
    """MaskViM's defaults: encoder masks in stages 1-3 and the Mask_D decoder switches."""
    return dict(vmamba_defaults(size, encoder_mask_stages=(1, 2, 3)), decoder="mask_d", mask_d_depths=(1, 1, 1),
                decoder_drop_path=0.1)


@register_model("maskvim", sizes=tuple(SIZES), defaults=maskvim_defaults, display_name="MaskViM", backbone="Mask",
                color="#c0392b", step_cost=2.2, pretrained_files=PRETRAINED_FILES)
def build_maskvim_model(size: str, num_classes: int, **switches):
    """MaskViM (VMamba v0 encoder with token masks + Mask_D) with complete switches (the registry's)."""
    from maskvim.model import build_maskvim

    return build_segmentor("maskvim", size, num_classes, switches, build_maskvim)


def build_segmentor(name: str, size: str, num_classes: int, switches: dict, assemble: Callable):
    """Validate complete `switches` (defaults filled in), build with `assemble(spec, num_classes, sw)`, load the
    VMamba v0 ImageNet weights when `pretrained` names a file, and keep the resolved switches as `model.config`."""
    sw = _validate(dict(switches))
    spec = SIZES[size]
    model = assemble(spec, num_classes, sw)

    if sw["pretrained"] is not None:
        from maskvim.pretrained import load_vmamba_v0_encoder

        # the LoadReport (loaded / new / unused keys) stays on the model for the run's log
        model.pretrained_report = load_vmamba_v0_encoder(model.encoder, sw["pretrained"])
    model.config = {"model": name, "size": size, "num_classes": num_classes,
                    **{k: _jsonable(v) for k, v in {**spec, **sw}.items() if k != "mask_lambdas"}}
    return model


def _validate(sw: dict) -> dict:
    stages = _int_tuple(sw["encoder_mask_stages"], "encoder_mask_stages")
    if any(s not in (1, 2, 3, 4) for s in stages) or len(set(stages)) != len(stages):
        raise ValueError(f"encoder_mask_stages must be distinct stages among 1-4, got {sw['encoder_mask_stages']!r}")
    sw["encoder_mask_stages"] = tuple(sorted(stages))
    sw["mask_lambdas"] = _lambdas(sw["mask_lambda"], sw["encoder_mask_stages"])

    losses = sw["mask_losses"]
    losses = (losses,) if isinstance(losses, str) else tuple(losses)
    bad = [x for x in losses if x not in MASK_LOSSES]
    if bad:
        raise ValueError(f"mask_losses must be a subset of {MASK_LOSSES}, got {sw['mask_losses']!r}")
    sw["mask_losses"] = tuple(x for x in MASK_LOSSES if x in losses)

    if sw["mask_form"] not in ("authors", "paper"):
        raise ValueError(f"mask_form must be 'authors' or 'paper', got {sw['mask_form']!r}")
    crop = _int_tuple(sw["crop_size"], "crop_size")
    if len(crop) != 2 or min(crop) < 32:
        raise ValueError(f"crop_size must be (height, width), each at least 32, got {sw['crop_size']!r}")
    sw["crop_size"] = crop
    for key in ("alpha1", "alpha2", "aux_weight", "drop_path_rate", "dropout") + (
            ("decoder_drop_path",) if "decoder_drop_path" in sw else ()):
        v = sw[key]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{key} must be a non-negative number, got {v!r}")
        sw[key] = float(v)
    for key in ("drop_path_rate", "dropout") + (("decoder_drop_path",) if "decoder_drop_path" in sw else ()):
        if sw[key] >= 1:
            raise ValueError(f"{key} must be below 1, got {sw[key]!r}")
    ch = sw["decoder_channels"]
    if not isinstance(ch, int) or isinstance(ch, bool) or ch < 2:
        raise ValueError(f"decoder_channels must be an integer >= 2, got {ch!r}")
    sw["aux_channels"] = ch // 2
    if sw["scan_backend"] not in SCAN_BACKENDS:
        raise ValueError(f"scan_backend must be one of {SCAN_BACKENDS}, got {sw['scan_backend']!r}")
    if sw["pretrained"] is not None:
        path = os.fspath(sw["pretrained"])
        if not os.path.isfile(path):
            raise FileNotFoundError(f"pretrained: no checkpoint file at {path!r}")
        sw["pretrained"] = path
    if "decoder" in sw:
        if sw["decoder"] not in ("mask_d", "no_mask", "vss"):
            raise ValueError(f"decoder must be 'mask_d', 'no_mask' or 'vss', got {sw['decoder']!r}")
        depths = _int_tuple(sw["mask_d_depths"], "mask_d_depths")
        if len(depths) != 3 or min(depths) < 1:
            raise ValueError(f"mask_d_depths must be 3 positive integers (stages 1-3), got {sw['mask_d_depths']!r}")
        sw["mask_d_depths"] = depths
    sw["mask_gamma"] = MASK_GAMMA
    return sw


def _lambdas(value, stages: tuple[int, ...]) -> dict[int, float]:
    """mask_lambda (float | one per masked stage | {stage: value}) -> {stage: value} for the masked stages."""
    if isinstance(value, Mapping):
        missing = [s for s in stages if s not in value]
        if missing:
            raise ValueError(f"mask_lambda mapping lacks masked stage(s) {missing}")
        lams = {int(s): value[s] for s in stages}
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        lams = {s: value for s in stages}
    else:
        values = tuple(value)
        if len(values) != len(stages):
            raise ValueError(f"mask_lambda needs one value per masked stage {stages}, got {value!r}")
        lams = dict(zip(stages, values))
    for s, v in lams.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
            raise ValueError(f"mask_lambda for stage {s} must be a kept fraction in [0, 1], got {v!r}")
    return {s: float(v) for s, v in lams.items()}


def _int_tuple(value, key: str) -> tuple[int, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{key} must be a sequence of integers, got {value!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise ValueError(f"{key} must be a sequence of integers, got {value!r}")
    return items


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v
