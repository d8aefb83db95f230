"""Every model family the harness runs: importing this module registers them all.

A new family is one folder (its code, and a registration module that imports no torch at module level)
plus one import line here. Everything else (grid, variants, presets, complexity, perf, tables, plots)
asks the registry for names, sizes, defaults and display names.
"""
import maskvim.builder  # noqa: F401  (maskvim)
import baselines.vmamba  # noqa: F401,I001  (vmamba_linear, vmamba_upernet)
from maskvim.registry import (build_model, default_switches, get_family, is_registered, list_models,  # noqa: F401
                              model_sizes)


def display_name(model: str) -> str:
    """A registered model's table name; a name no longer registered (old result files) as it is."""
    return get_family(model).display_name if is_registered(model) else model


def backbone_name(model: str) -> str:
    return get_family(model).backbone if is_registered(model) else model


def model_color(model: str) -> str:
    return get_family(model).color if is_registered(model) else "black"


def model_order(model: str) -> tuple[int, str]:
    """Sort key of a model's rows: registration order, unregistered names last."""
    names = list_models()
    return (names.index(model) if model in names else len(names), model)
