"""VMamba+Linear and VMamba+UperNet: the paper's baselines on MaskViM's own VMamba v0 encoder code.

Both take every encoder and loss switch of ``maskvim.builder`` (encoder masks included: Tab. 6 puts them
under a Linear head) but none of Mask_D's. VMamba+Linear has no auxiliary head by default (``aux_weight``
0), VMamba+UperNet the FCN head on stage 3 at 0.4. Registration only; the modules beside this file hold
the heads and are imported when a model is built.
"""
from maskvim.builder import PRETRAINED_FILES, SIZES, build_segmentor, vmamba_defaults
from maskvim.registry import register_model


@register_model("vmamba_linear", sizes=tuple(SIZES), defaults=lambda size: vmamba_defaults(size, aux_weight=0.0),
                display_name="VMamba+Linear", backbone="VMamba", color="#7d8c8d", step_cost=1.0,
                pretrained_files=PRETRAINED_FILES)
def build_vmamba_linear_model(size: str, num_classes: int, **switches):
    from baselines.vmamba.linear_head import build_vmamba_linear

    return build_segmentor("vmamba_linear", size, num_classes, switches, build_vmamba_linear)


@register_model("vmamba_upernet", sizes=tuple(SIZES), defaults=vmamba_defaults, display_name="VMamba+UperNet",
                backbone="VMamba", color="#2471a3", step_cost=1.4, pretrained_files=PRETRAINED_FILES)
def build_vmamba_upernet_model(size: str, num_classes: int, **switches):
    from baselines.vmamba.upernet import build_vmamba_upernet

    return build_segmentor("vmamba_upernet", size, num_classes, switches, build_vmamba_upernet)
