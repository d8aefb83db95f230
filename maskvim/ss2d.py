"""SS2D: VMamba's 2-D selective scan (the "v0" form of the official VMamba code, January 2024).

in_proj C -> 2E (E = expand * C, expand 2), split into x and z; x -> depthwise 3x3 conv -> SiLU;
cross-scan x into K = 4 sequences (row-major, column-major, and both reversed); per direction a
projection x_proj -> (dt of rank R = ceil(C / 16), B and C of d_state N), dt_proj R -> E; one
selective scan over the K*E channels with delta = softplus(dt + dt_bias), A = -exp(A_log) and the
D skip; cross-merge (the four outputs mapped back to row-major order and summed); LayerNorm over E;
times SiLU(z); out_proj E -> C.

Parameter names and shapes mirror the official v0 checkpoint (``vssmtiny_dp01_ckpt_epoch_292.pth``):
``in_proj.weight`` (2E, C), ``conv2d.weight`` (E, 1, 3, 3) / ``conv2d.bias``, ``x_proj_weight``
(K, R + 2N, E), ``dt_projs_weight`` (K, E, R), ``dt_projs_bias`` (K, E), ``A_logs`` (K*E, N),
``Ds`` (K*E,), ``out_norm.{weight,bias}`` (E,), ``out_proj.weight`` (C, E); no biases on the
projections. Initialisation follows VMamba v0 / Mamba: dt bias so that softplus(bias) is log-uniform
in [1e-3, 1e-1], dt weight U(-R^-0.5, R^-0.5), S4D-real A_log = log(1..N), D = 1.

The scan runs in float32 whatever the surrounding dtype (as v0 does: ``xs.float()``), through
``maskvim.scan.selective_scan`` with the backend in ``self.scan_backend``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

K_DIRECTIONS = 4


def cross_scan(x: torch.Tensor) -> torch.Tensor:
    """(B, E, H, W) -> (B, 4, E, H*W): row-major, column-major, reversed row-major, reversed column-major."""
    b, e, h, w = x.shape
    rows = x.flatten(2)
    cols = x.transpose(2, 3).flatten(2)
    hw_wh = torch.stack([rows, cols], dim=1)
    return torch.cat([hw_wh, hw_wh.flip(-1)], dim=1)


def cross_merge(ys: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 4, E, H*W) in scan order -> (B, E, H*W) in row-major order, the four directions summed.

    The exact adjoint of `cross_scan` (so its autograd backward is the cross-scan again)."""
    b, k, e, l = ys.shape
    ys = ys[:, 0:2] + ys[:, 2:4].flip(-1)
    col_to_row = ys[:, 1].reshape(b, e, w, h).transpose(2, 3).reshape(b, e, l)
    return ys[:, 0] + col_to_row


class SS2D(nn.Module):
    """2-D selective scan over channels-last tokens: (B, H, W, C) -> (B, H, W, C)."""

    def __init__(self, d_model: int, d_state: int = 16, expand: int = 2, dt_rank: int | str = "auto",
                 d_conv: int = 3, conv_bias: bool = True, bias: bool = False, dt_min: float = 1e-3,
                 dt_max: float = 0.1, dt_init_floor: float = 1e-4, scan_backend: str = "auto"):
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.scan_backend = scan_backend
        e, r, n, k = self.d_inner, self.dt_rank, self.d_state, K_DIRECTIONS

        self.in_proj = nn.Linear(d_model, 2 * e, bias=bias)
        self.conv2d = nn.Conv2d(e, e, kernel_size=d_conv, padding=(d_conv - 1) // 2, groups=e, bias=conv_bias)
        self.act = nn.SiLU()

        # x_proj of v0: K bias-free Linear(E -> R + 2N) stacked as one (K, R + 2N, E) weight.
        x_proj = torch.empty(k, r + 2 * n, e)
        bound = 1.0 / math.sqrt(e)  # nn.Linear's default init, which v0 inherits
        nn.init.uniform_(x_proj, -bound, bound)
        self.x_proj_weight = nn.Parameter(x_proj)

        # dt_proj: weight U(-R^-0.5, R^-0.5); bias = softplus^-1 of a log-uniform dt in [dt_min, dt_max].
        dt_std = r ** -0.5
        self.dt_projs_weight = nn.Parameter(torch.empty(k, e, r).uniform_(-dt_std, dt_std))
        dt = torch.exp(torch.rand(k, e) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        self.dt_projs_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))

        # S4D-real initialisation; both kept out of weight decay (as VMamba / Mamba do).
        a = torch.arange(1, n + 1, dtype=torch.float32).repeat(k * e, 1)
        self.A_logs = nn.Parameter(torch.log(a))
        self.A_logs._no_weight_decay = True
        self.Ds = nn.Parameter(torch.ones(k * e))
        self.Ds._no_weight_decay = True

        self.out_norm = nn.LayerNorm(e)
        self.out_proj = nn.Linear(e, d_model, bias=bias)

    def forward_core(self, x: torch.Tensor) -> torch.Tensor:
        """(B, E, H, W) after conv + SiLU -> (B, H*W, E) merged scan output in float32."""
        from maskvim.scan import selective_scan  # lazy: the scan package builds its kernel on first use

        b, e, h, w = x.shape
        l, k, n, r = h * w, K_DIRECTIONS, self.d_state, self.dt_rank
        xs = cross_scan(x)                                                       # (B, K, E, L)
        # matmul broadcasts the (K, ., .) weights over B and multiplies the contiguous (E, L) slabs in
        # place; the equivalent einsum permutes xs into a copy first (3-7x slower forward + backward).
        x_dbl = torch.matmul(self.x_proj_weight, xs)                            # (B, K, R+2N, L)
        dts, bs, cs = torch.split(x_dbl, [r, n, n], dim=2)
        dts = torch.matmul(self.dt_projs_weight, dts)                           # (B, K, E, L)
        y = selective_scan(
            xs.float().reshape(b, k * e, l),
            dts.float().reshape(b, k * e, l),
            -torch.exp(self.A_logs.float()),
            bs.float().contiguous(),
            cs.float().contiguous(),
            D=self.Ds.float(),
            delta_bias=self.dt_projs_bias.float().reshape(-1),
            delta_softplus=True,
            backend=self.scan_backend,
        )
        y = cross_merge(y.reshape(b, k, e, l), h, w)                             # (B, E, L)
        return y.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        x, z = self.in_proj(x).chunk(2, dim=-1)
        x = self.act(self.conv2d(x.permute(0, 3, 1, 2).contiguous()))
        y = self.out_norm(self.forward_core(x).reshape(b, h, w, self.d_inner))
        y = y.to(z.dtype) * F.silu(z)
        return self.out_proj(y)
