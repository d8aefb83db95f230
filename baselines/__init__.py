"""Registered model families other than MaskViM, one folder each (``vmamba/``: VMamba+Linear, VMamba+UperNet)."""
