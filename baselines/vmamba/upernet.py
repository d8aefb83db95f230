"""VMamba+UperNet: the VMamba v0 encoder with mmseg's UPerHead (PPM 1, 2, 3, 6; 512 channels at tiny)
and the FCN auxiliary head on stage 3 (weight 0.4), as in VMamba's segmentation configs.

Built from the same pieces as MaskViM (maskvim.encoder, maskvim.decoder's PPM / FPN / bottlenecks,
maskvim.model.Segmentor): only the laterals differ (1x1 ConvBNReLU here, mask -> Linear -> MVSS -> LN
in Mask_D). Encoder mask switches apply here too; ``compute_loss`` then includes L_m^r.
"""
from __future__ import annotations

from maskvim.decoder import upernet_head
from maskvim.model import Segmentor, assemble, build_encoder


def build_vmamba_upernet(spec: dict, num_classes: int, sw: dict) -> Segmentor:
    """VMamba+UperNet from a size spec (maskvim.builder.SIZES) and resolved switches (maskvim.builder)."""
    head = upernet_head(spec["dims"], sw["decoder_channels"], num_classes, dropout=sw["dropout"])
    return assemble(build_encoder(spec, sw), head, spec, num_classes, sw)
