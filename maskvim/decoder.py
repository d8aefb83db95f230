"""Decoder heads: UperNet pieces (PPM, FPN, bottlenecks), Mask_D, the "-All" VSS variant, the FCN aux head.

Every decode head maps the four encoder maps [(B, C_i, H_i, W_i)] to (logits (B, K, H_1, W_1),
masks [(where, m (B, h, w))]); the logits stay at the stage-1 grid (1/4 of the input), the segmentor
resizes them.

UperNet (mmseg's ``UPerHead``, as used by VMamba and the authors' configs): PPM with pool scales
(1, 2, 3, 6) on stage 4 -> 3x3 ``bottleneck``; 1x1 ``lateral_convs`` on stages 1-3; top-down path
adding the upsampled coarser lateral; 3x3 ``fpn_convs``; everything upsampled to the stage-1 grid,
concatenated and fused by the 3x3 ``fpn_bottleneck``; Dropout2d(0.1); 1x1 ``conv_seg``. Every conv
is conv (no bias) + BatchNorm + ReLU (mmcv ``ConvModule`` with BN); ``nn.SyncBatchNorm`` replaces
BatchNorm on multi-GPU runs (the engine converts it). Bilinear resizes use align_corners=False.

Mask_D (MaskViM): the same head with each stage-1..3 lateral replaced by
``mask -> Linear(C_i -> channels) -> MVSS block(s) -> LayerNorm`` (the authors' ``DecoderExp4``);
depths per lateral (1, 1, 1) by default; each MVSS block owns a TokenMask on its stage's grid for the
training crop. Decoder stochastic depth: linspace(0, decoder_drop_path, sum(depths)) handed out from
the coarsest lateral to the finest (the authors' ``depths[::-1]`` slicing), so lateral 1 gets the
largest rate. Variant ``no_mask``: the same laterals without masks.

Variant ``vss`` (paper Tab. 6 "-All", built on "-mask"): the paper only says the multi-scale
aggregation module is replaced by VSS blocks and the authors' code has no such variant; our reading:
the conv aggregation (PPM, top-down path, fpn convs, both bottlenecks) is removed, stage 4 gets the
same unmasked Linear -> VSS -> LayerNorm lateral as stages 1-3, the four laterals are upsampled to the
stage-1 grid, concatenated, projected by Linear(4 * channels -> channels), fused by one VSS block and
a LayerNorm, then Dropout2d + 1x1 classifier.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maskvim.blocks import MVSSBlock, VSSBlock, linspace
from maskvim.encoder import init_linear_layernorm
from maskvim.mask import TokenMask
from maskvim.sites import MaskSite

DECODER_VARIANTS = ("mask_d", "no_mask", "vss")
POOL_SCALES = (1, 2, 3, 6)
PATCH_SIZE = 4


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) to `size`, align_corners=False (mmseg's default)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ConvBNReLU(nn.Module):
    """mmcv ``ConvModule`` with BatchNorm and ReLU: conv (bias-free) -> bn -> activate."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.activate = nn.ReLU(inplace=True)
        # mmcv's ConvModule init: kaiming normal (fan_out, relu) for the conv, BN to (1, 0)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class PPM(nn.ModuleList):
    """Pyramid pooling: per scale s, adaptive average pool to s x s -> 1x1 ConvBNReLU -> upsample back."""

    def __init__(self, pool_scales, in_ch: int, ch: int):
        super().__init__([nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvBNReLU(in_ch, ch, 1)) for s in pool_scales])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [resize(stage(x), x.shape[2:]) for stage in self]


class Classifier(nn.Module):
    """Dropout2d -> 1x1 conv (mmseg's ``cls_seg``; conv_seg initialised N(0, 0.01), bias 0)."""

    def __init__(self, ch: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(ch, num_classes, 1)
        nn.init.normal_(self.conv_seg.weight, std=0.01)
        nn.init.zeros_(self.conv_seg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(self.dropout(x))


class ConvLateral(nn.Module):
    """UperNet's lateral: 1x1 ConvBNReLU; no masks."""

    def __init__(self, in_ch: int, ch: int):
        super().__init__()
        self.conv = ConvBNReLU(in_ch, ch, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        return self.conv(x), []

    def token_masks(self) -> list:
        return []


class MVSSLateral(nn.Module):
    """Mask_D lateral: (mask ->) Linear(in_ch -> ch) -> MVSS block(s) -> LayerNorm, channels-first in and out.

    The first block carries the Linear; every block owns its own mask when ``masked``."""

    def __init__(self, in_ch: int, ch: int, depth: int, drop_paths, *, masked: bool, grid, mask_gamma: float,
                 mask_form: str, d_state: int, scan_backend: str):
        super().__init__()
        self.blocks = nn.ModuleList([
            MVSSBlock(ch, in_dim=in_ch if j == 0 else ch, drop_path=drop_paths[j], d_state=d_state,
                      scan_backend=scan_backend,
                      token_mask=TokenMask(grid, gamma=mask_gamma, form=mask_form) if masked else None)
            for j in range(depth)])
        self.norm = nn.LayerNorm(ch)
        self.apply(init_linear_layernorm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
        x = x.permute(0, 2, 3, 1)
        masks = []
        for j, blk in enumerate(self.blocks):
            x, m = blk(x)
            if m is not None:
                masks.append((j, m))
        return self.norm(x).permute(0, 3, 1, 2).contiguous(), masks

    def token_masks(self) -> list[tuple[int, TokenMask]]:
        return [(j, blk.token_mask) for j, blk in enumerate(self.blocks) if blk.token_mask is not None]


class UperHead(nn.Module):
    """UperNet decode head with pluggable stage-1..3 laterals (ConvLateral: UperNet; MVSSLateral: Mask_D)."""

    def __init__(self, in_channels, channels: int, num_classes: int, dropout: float, laterals: list[nn.Module],
                 pool_scales=POOL_SCALES):
        super().__init__()
        if len(laterals) != len(in_channels) - 1:
            raise ValueError(f"need {len(in_channels) - 1} laterals, got {len(laterals)}")
        self.psp_modules = PPM(pool_scales, in_channels[-1], channels)
        self.bottleneck = ConvBNReLU(in_channels[-1] + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(laterals)
        self.fpn_convs = nn.ModuleList([ConvBNReLU(channels, channels, 3) for _ in laterals])
        self.fpn_bottleneck = ConvBNReLU(len(in_channels) * channels, channels, 3)
        self.cls = Classifier(channels, num_classes, dropout)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
        laterals, masks = [], []
        for i, lateral in enumerate(self.lateral_convs):
            y, lat_masks = lateral(feats[i])
            laterals.append(y)
            masks += [(str(MaskSite("decoder", i + 1, j)), m) for j, m in lat_masks]
        top = feats[-1]
        laterals.append(self.bottleneck(torch.cat([top, *self.psp_modules(top)], dim=1)))
        for i in range(len(laterals) - 1, 0, -1):  # top-down path
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[2:])
        outs = [conv(laterals[i]) for i, conv in enumerate(self.fpn_convs)] + [laterals[-1]]
        outs = [resize(o, outs[0].shape[2:]) for o in outs]
        return self.cls(self.fpn_bottleneck(torch.cat(outs, dim=1))), masks

    def token_masks(self) -> list[tuple[str, TokenMask]]:
        return [(str(MaskSite("decoder", i + 1, j)), tm)
                for i, lateral in enumerate(self.lateral_convs) for j, tm in lateral.token_masks()]


class VSSAggregationHead(nn.Module):
    """Mask_D "-All" (variant ``vss``): unmasked VSS laterals on all four stages, concatenated at the
    stage-1 grid, Linear(4ch -> ch) -> VSS block -> LayerNorm -> classifier (see the module docstring)."""

    def __init__(self, in_channels, channels: int, num_classes: int, dropout: float, depths, drop_paths,
                 d_state: int, scan_backend: str):
        super().__init__()
        self.lateral_convs = nn.ModuleList([
            MVSSLateral(c, channels, d, rates, masked=False, grid=(1, 1), mask_gamma=0.0, mask_form="authors",
                        d_state=d_state, scan_backend=scan_backend)
            for c, d, rates in zip(in_channels, depths, drop_paths)])
        self.fuse_proj = nn.Linear(len(in_channels) * channels, channels)
        self.fuse = VSSBlock(channels, drop_path=0.0, d_state=d_state, scan_backend=scan_backend)
        self.fuse_norm = nn.LayerNorm(channels)
        self.apply(init_linear_layernorm)
        self.cls = Classifier(channels, num_classes, dropout)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list]:
        size = feats[0].shape[2:]
        ys = [resize(lateral(f)[0], size) for lateral, f in zip(self.lateral_convs, feats)]
        x = self.fuse_proj(torch.cat(ys, dim=1).permute(0, 2, 3, 1))
        x = self.fuse_norm(self.fuse(x)).permute(0, 3, 1, 2).contiguous()
        return self.cls(x), []

    def token_masks(self) -> list:
        return []


class FCNHead(nn.Module):
    """Auxiliary head (mmseg ``FCNHead``, num_convs 1, concat_input False): 3x3 ConvBNReLU -> classifier."""

    def __init__(self, in_ch: int, channels: int, num_classes: int, dropout: float):
        super().__init__()
        self.convs = ConvBNReLU(in_ch, channels, 3)
        self.cls = Classifier(channels, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.convs(x))


def decoder_drop_paths(depths, rate: float) -> list[list[float]]:
    """Per-lateral drop-path rates: linspace(0, rate, sum(depths)) from the coarsest lateral to the finest."""
    dpr = linspace(0.0, rate, sum(depths))
    out, start = [None] * len(depths), 0
    for i in reversed(range(len(depths))):
        out[i] = dpr[start:start + depths[i]]
        start += depths[i]
    return out


def upernet_head(in_channels, channels: int, num_classes: int, dropout: float = 0.1) -> UperHead:
    """VMamba+UperNet's decode head."""
    return UperHead(in_channels, channels, num_classes, dropout,
                    [ConvLateral(c, channels) for c in in_channels[:-1]])


def mask_d_head(in_channels, channels: int, num_classes: int, *, variant: str = "mask_d", depths=(1, 1, 1),
                dropout: float = 0.1, drop_path: float = 0.1, crop_size=(512, 1024), mask_gamma: float = 4.0,
                mask_form: str = "authors", d_state: int = 16, scan_backend: str = "auto") -> nn.Module:
    """MaskViM's decoder in one of its variants: ``mask_d`` (default), ``no_mask`` ("-mask"), ``vss`` ("-All")."""
    if variant not in DECODER_VARIANTS:
        raise ValueError(f"decoder must be one of {DECODER_VARIANTS}, got {variant!r}")
    depths = tuple(int(d) for d in depths)
    if len(depths) != len(in_channels) - 1 or min(depths) < 1:
        raise ValueError(f"mask_d_depths needs {len(in_channels) - 1} positive depths (stages 1-3), got {depths}")
    if variant == "vss":
        all_depths = depths + (1,)
        return VSSAggregationHead(in_channels, channels, num_classes, dropout, all_depths,
                                  decoder_drop_paths(all_depths, drop_path), d_state, scan_backend)
    rates = decoder_drop_paths(depths, drop_path)
    laterals = []
    for i, (c, d) in enumerate(zip(in_channels[:-1], depths)):
        stride = PATCH_SIZE * 2 ** i
        laterals.append(MVSSLateral(c, channels, d, rates[i], masked=variant == "mask_d",
                                    grid=(crop_size[0] // stride, crop_size[1] // stride), mask_gamma=mask_gamma,
                                    mask_form=mask_form, d_state=d_state, scan_backend=scan_backend))
    return UperHead(in_channels, channels, num_classes, dropout, laterals)
