"""VMamba+Linear: a linear classifier on the upsampled, concatenated multi-scale encoder features.

The four (output-normalised) stage maps are bilinearly upsampled to the stage-1 grid (1/4 of the
input), concatenated (sum(dims) channels: 1440 at tiny), passed through Dropout2d(0.1) and one 1x1
conv to the classes: no hidden layer, no normalisation, so the head is linear in the features and
the encoder carries the whole model (the paper's Tab. 6 baseline). No auxiliary head by default
(``aux_weight`` 0; a positive value adds the same FCN head as the UperNet models). Encoder mask
switches apply; ``compute_loss`` then includes L_m^r.
"""
from __future__ import annotations

import torch
from torch import nn

from maskvim.decoder import Classifier, resize
from maskvim.model import Segmentor, assemble, build_encoder


class LinearHead(nn.Module):
    """[(B, C_i, H_i, W_i)] -> (logits (B, K, H_1, W_1), no masks)."""

    def __init__(self, in_channels, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.cls = Classifier(sum(in_channels), num_classes, dropout)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list]:
        size = feats[0].shape[2:]
        return self.cls(torch.cat([resize(f, size) for f in feats], dim=1)), []

    def token_masks(self) -> list:
        return []


def build_vmamba_linear(spec: dict, num_classes: int, sw: dict) -> Segmentor:
    """VMamba+Linear from a size spec (maskvim.builder.SIZES) and resolved switches (maskvim.builder)."""
    head = LinearHead(spec["dims"], num_classes, dropout=sw["dropout"])
    return assemble(build_encoder(spec, sw), head, spec, num_classes, sw)
