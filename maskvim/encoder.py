"""VMamba "v0" encoder (the VSSM of VMamba's January 2024 release) with MaskViM's optional token masks.

Layout and parameter names mirror the official v0 classification checkpoint, so that loading
``vssmtiny_dp01_ckpt_epoch_292.pth`` is a near-identity key mapping (maskvim.pretrained):

    patch_embed.proj (Conv2d 3 -> C0, 4x4, stride 4), patch_embed.norm (LayerNorm)
    layers.{i}.blocks.{j}.ln_1 / .self_attention.{in_proj, conv2d, x_proj_weight, dt_projs_weight,
        dt_projs_bias, A_logs, Ds, out_norm, out_proj}
    layers.{i}.downsample.{norm, reduction}   (PatchMerging2D at the END of stages 0-2, as in v0)
    outnorm{i}                                 (per-stage output LayerNorm of VMamba's segmentation backbone)

Not in the checkpoint: ``outnorm{i}`` and, in masked stages, ``layers.{i}.blocks.{j}.token_mask.mask_logits``;
the checkpoint's classifier ``norm`` / ``head`` are unused here.

Masks: the blocks of every stage listed in ``mask_stages`` (1-based; MaskViM's "+Block part" is
(1, 2, 3), "+Block all" (1, 2, 3, 4)) are MVSS blocks, each with its own TokenMask whose grid is the
stage's token grid for ``crop_size`` (H0 = crop_h / (4 * 2^(stage-1))).

Stochastic depth grows linearly from 0 to ``drop_path_rate`` over all blocks (v0's rule). Linear
layers are initialised trunc_normal(std 0.02) with zero bias and LayerNorms to (1, 0), as v0's
``_init_weights``; the SS2D parameters keep their own initialisation (they are Parameters, not Linears).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maskvim.blocks import MVSSBlock, VSSBlock, linspace
from maskvim.mask import TokenMask
from maskvim.sites import MaskSite

PATCH_SIZE = 4


class PatchEmbed2D(nn.Module):
    """4x4 stride-4 conv + LayerNorm: (B, 3, H, W) -> channels-last (B, H/4, W/4, C0)."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int = PATCH_SIZE):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class PatchMerging2D(nn.Module):
    """2x2 neighbourhoods concatenated (v0's order x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]),
    LayerNorm(4C), Linear(4C -> 2C, no bias). An odd grid is zero-padded at the bottom / right."""

    def __init__(self, dim: int, out_dim: int | None = None):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim if out_dim is None else out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1:3]
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class VSSLayer(nn.Module):
    """One stage: ``blocks`` then (except the last stage) ``downsample``."""

    def __init__(self, blocks: list[nn.Module], downsample: nn.Module | None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample


class VMambaEncoder(nn.Module):
    """(B, 3, H, W) -> (4 feature maps (B, C_i, H / 2^(i+2), W / 2^(i+2)), masks [(where, m (B, h, w))])."""

    def __init__(self, dims=(96, 192, 384, 768), depths=(2, 2, 9, 2), d_state: int = 16,
                 drop_path_rate: float = 0.3, mask_stages=(), crop_size=(512, 1024),
                 mask_gamma: float = 4.0, mask_form: str = "authors", scan_backend: str = "auto",
                 in_chans: int = 3):
        super().__init__()
        if len(dims) != len(depths):
            raise ValueError(f"dims {dims} and depths {depths} must have the same length")
        self.dims = tuple(int(d) for d in dims)
        self.depths = tuple(int(d) for d in depths)
        self.mask_stages = tuple(sorted(int(s) for s in mask_stages))
        self.patch_embed = PatchEmbed2D(in_chans, self.dims[0])
        dpr = linspace(0.0, drop_path_rate, sum(self.depths))

        self.layers = nn.ModuleList()
        n_stages = len(self.dims)
        for i, (dim, depth) in enumerate(zip(self.dims, self.depths)):
            stride = PATCH_SIZE * 2 ** i
            grid = (crop_size[0] // stride, crop_size[1] // stride)
            rates = dpr[sum(self.depths[:i]):sum(self.depths[:i + 1])]
            if i + 1 in self.mask_stages:
                blocks = [MVSSBlock(dim, token_mask=TokenMask(grid, gamma=mask_gamma, form=mask_form),
                                    drop_path=r, d_state=d_state, scan_backend=scan_backend) for r in rates]
            else:
                blocks = [VSSBlock(dim, drop_path=r, d_state=d_state, scan_backend=scan_backend) for r in rates]
            downsample = PatchMerging2D(dim, self.dims[i + 1]) if i < n_stages - 1 else None
            self.layers.append(VSSLayer(blocks, downsample))
        for i, dim in enumerate(self.dims):
            self.add_module(f"outnorm{i}", nn.LayerNorm(dim))
        self.apply(init_linear_layernorm)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[tuple[str, torch.Tensor]]]:
        x = self.patch_embed(x)
        feats, masks = [], []
        for i, layer in enumerate(self.layers):
            for j, blk in enumerate(layer.blocks):
                if isinstance(blk, MVSSBlock):
                    x, m = blk(x)
                    masks.append((str(MaskSite("encoder", i + 1, j)), m))
                else:
                    x = blk(x)
            feats.append(getattr(self, f"outnorm{i}")(x).permute(0, 3, 1, 2).contiguous())
            if layer.downsample is not None:
                x = layer.downsample(x)
        return feats, masks

    def token_masks(self) -> list[tuple[str, TokenMask]]:
        return [(str(MaskSite("encoder", i + 1, j)), blk.token_mask)
                for i, layer in enumerate(self.layers) for j, blk in enumerate(layer.blocks)
                if isinstance(blk, MVSSBlock) and blk.token_mask is not None]


def init_linear_layernorm(m: nn.Module) -> None:
    """VMamba's init, also the authors' for Mask_D's SSM parts: Linear trunc_normal(0.02) / zero bias, LayerNorm (1, 0)."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
