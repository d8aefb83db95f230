"""The encoder-decoder segmentor shared by MaskViM and its baselines, and MaskViM's assembly.

One class, ``Segmentor``, runs every model (MaskViM, VMamba+UperNet, VMamba+Linear): a VMamba v0
encoder (optionally with token masks), a decode head, an optional FCN auxiliary head on stage 3, and
the loss of ``maskvim.losses``. Contract (docs/ARCHITECTURE.md):

- train mode: ``model(images)`` -> dict ``logits`` (B, K, H/4, W/4), ``aux_logits`` (B, K, H/16, W/16:
  the FCN head on stage 3; present when an aux head exists), ``encoder_masks`` / ``decoder_masks``
  (lists of ``(where, m (B, h, w))``, hard 0/1 with straight-through gradients). Training inputs must
  be multiples of 32 (the encoder's total stride) so that every mask grid and every label pixel line
  up; a clear error says so otherwise.
- eval mode: ``model(images)`` -> logits (B, K, H, W) at the input resolution. Inputs of any size are
  zero-padded at the bottom / right to a multiple of 32 (zero = the ImageNet mean after normalisation),
  the logits upsampled to the padded size and cropped back.
- ``compute_loss(outputs, labels)`` -> dict of scalars ``loss``, ``ce``, ``aux_ce``, ``mask_ratio``,
  ``mask_position``; the last three are the raw (unweighted) terms, ``loss`` = ce + aux_weight * aux_ce
  + alpha1 * mask_ratio + alpha2 * mask_position. A term is switched off (a zero tensor without a
  graph) when its switch is off, its weight is 0, or there is nothing to apply it to (no aux head, no
  encoder masks, no decoder masks).
- ``token_masks()`` -> [(where, TokenMask)], encoder masks first ("encoder.stage{s}.block{j}", s 1-based)
  then decoder masks ("decoder.lateral{i}.block{j}", i = the encoder stage it reads, 1-based).
- ``scan_backend``: the requested scan backend; assigning it re-points every SS2D.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maskvim.decoder import FCNHead, mask_d_head
from maskvim.encoder import VMambaEncoder
from maskvim.losses import (IGNORE_INDEX, correct_prediction_map, mask_position_loss, mask_ratio_loss,
                            segmentation_ce, zero_term)
from maskvim.sites import MaskSite
from maskvim.ss2d import SS2D

TOTAL_STRIDE = 32
AUX_STAGE = 3  # 1-based stage the FCN auxiliary head reads


class Segmentor(nn.Module):
    """Encoder + decode head (+ aux head) + losses; see the module docstring for the contract."""

    def __init__(self, encoder: VMambaEncoder, decode_head: nn.Module, aux_head: nn.Module | None, *,
                 mask_lambdas: dict[int, float], alpha1: float = 1.0, alpha2: float = 1.0,
                 mask_losses=("ratio", "position"), aux_weight: float = 0.4, ignore_index: int = IGNORE_INDEX,
                 scan_backend: str = "auto"):
        super().__init__()
        self.encoder = encoder
        self.decode_head = decode_head
        self.aux_head = aux_head
        self.alpha1, self.alpha2 = float(alpha1), float(alpha2)
        self.mask_losses = tuple(mask_losses)
        self.aux_weight = float(aux_weight)
        self.ignore_index = ignore_index
        # target kept fraction of every encoder mask, keyed by its `where`
        self.mask_lambdas = {where: float(mask_lambdas[MaskSite.parse(where).stage])
                             for where, _ in encoder.token_masks()}
        self._scan_backend = scan_backend
        self.config: dict = {}  # the resolved switches; set by maskvim.builder

    # ---- scan backend -------------------------------------------------------------------------
    @property
    def scan_backend(self) -> str:
        return self._scan_backend

    @scan_backend.setter
    def scan_backend(self, backend: str) -> None:
        self._scan_backend = backend
        for m in self.modules():
            if isinstance(m, SS2D):
                m.scan_backend = backend

    # ---- forward ------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"expected images (B, 3, H, W), got shape {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if self.training:
            if h % TOTAL_STRIDE or w % TOTAL_STRIDE:
                raise ValueError(f"training input {h}x{w} must be multiples of {TOTAL_STRIDE} (the encoder's total "
                                 f"stride); choose a crop size such as 512x1024")
            feats, enc_masks = self.encoder(images)
            logits, dec_masks = self.decode_head(feats)
            out = {"logits": logits, "encoder_masks": enc_masks, "decoder_masks": dec_masks}
            if self.aux_head is not None:
                out["aux_logits"] = self.aux_head(feats[AUX_STAGE - 1])
            return out
        ph, pw = -h % TOTAL_STRIDE, -w % TOTAL_STRIDE
        x = F.pad(images, (0, pw, 0, ph)) if ph or pw else images
        feats, _ = self.encoder(x)
        logits, _ = self.decode_head(feats)
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits[..., :h, :w]

    # ---- losses -------------------------------------------------------------------------------
    def compute_loss(self, outputs: dict, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = outputs["logits"]
        if labels.ndim != 3:
            raise ValueError(f"expected labels (B, H, W), got shape {tuple(labels.shape)}")
        ce = segmentation_ce(logits, labels, self.ignore_index)
        terms = {"aux_ce": zero_term(ce), "mask_ratio": zero_term(ce), "mask_position": zero_term(ce)}
        loss = ce
        if self.aux_weight > 0 and "aux_logits" in outputs:
            terms["aux_ce"] = segmentation_ce(outputs["aux_logits"], labels, self.ignore_index)
            loss = loss + self.aux_weight * terms["aux_ce"]
        enc_masks = outputs.get("encoder_masks") or []
        if "ratio" in self.mask_losses and self.alpha1 > 0 and enc_masks:
            terms["mask_ratio"] = mask_ratio_loss(enc_masks, self.mask_lambdas)
            loss = loss + self.alpha1 * terms["mask_ratio"]
        dec_masks = outputs.get("decoder_masks") or []
        if "position" in self.mask_losses and self.alpha2 > 0 and dec_masks:
            correct = correct_prediction_map(logits, labels)
            terms["mask_position"] = mask_position_loss(dec_masks, correct, labels, self.ignore_index)
            loss = loss + self.alpha2 * terms["mask_position"]
        return {"loss": loss, "ce": ce, **terms}

    # ---- introspection ------------------------------------------------------------------------
    def token_masks(self):
        head_masks = self.decode_head.token_masks() if hasattr(self.decode_head, "token_masks") else []
        return self.encoder.token_masks() + head_masks


def build_maskvim(spec: dict, num_classes: int, sw: dict) -> Segmentor:
    """MaskViM from a size spec (maskvim.builder.SIZES) and resolved switches (maskvim.builder)."""
    encoder = build_encoder(spec, sw)
    head = mask_d_head(spec["dims"], sw["decoder_channels"], num_classes, variant=sw["decoder"],
                       depths=sw["mask_d_depths"], dropout=sw["dropout"], drop_path=sw["decoder_drop_path"],
                       crop_size=sw["crop_size"], mask_gamma=sw["mask_gamma"], mask_form=sw["mask_form"],
                       d_state=spec["d_state"], scan_backend=sw["scan_backend"])
    return assemble(encoder, head, spec, num_classes, sw)


def build_encoder(spec: dict, sw: dict) -> VMambaEncoder:
    """The VMamba v0 encoder every model shares, with the encoder mask switches applied."""
    return VMambaEncoder(dims=spec["dims"], depths=spec["depths"], d_state=spec["d_state"],
                         drop_path_rate=sw["drop_path_rate"], mask_stages=sw["encoder_mask_stages"],
                         crop_size=sw["crop_size"], mask_gamma=sw["mask_gamma"], mask_form=sw["mask_form"],
                         scan_backend=sw["scan_backend"])


def assemble(encoder: VMambaEncoder, head: nn.Module, spec: dict, num_classes: int, sw: dict) -> Segmentor:
    """Wrap encoder + head into a Segmentor, adding the FCN aux head on stage 3 when aux_weight > 0."""
    aux = None
    if sw["aux_weight"] > 0:
        aux = FCNHead(spec["dims"][AUX_STAGE - 1], sw["aux_channels"], num_classes, sw["dropout"])
    return Segmentor(encoder, head, aux, mask_lambdas=sw["mask_lambdas"], alpha1=sw["alpha1"],
                     alpha2=sw["alpha2"], mask_losses=sw["mask_losses"], aux_weight=sw["aux_weight"],
                     scan_backend=sw["scan_backend"])
