"""MaskViM (AAAI 2025) in plain PyTorch: VMamba v0 encoder with learned token masks, Mask_D decoder, mask losses.

``build_model(name, size, num_classes=19, **switches)`` builds any registered model (``maskvim.registry``);
importing this package registers MaskViM itself (``maskvim.builder``), ``benchmark.models`` every family.
"""
from maskvim import builder as _builder  # noqa: F401  (registers "maskvim")
from maskvim.registry import build_model

__all__ = ["build_model"]
