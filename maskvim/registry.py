"""The model registry: every model family registers its factory here, and the harness asks only here.

    @register_model("maskvim", sizes=("micro", "tiny"), defaults=lambda size: {...}, display_name="MaskViM")
    def build(size, num_classes, **switches): ...

A family is one factory ``build(size, num_classes, **switches)`` plus what the harness needs to know
without building it: the size names it accepts, its default switches per size (a dict, or a function
of the size), and display facts for tables and plots. ``build_model`` fills in the defaults, rejects
switches the family does not know (its defaults name every switch it accepts), and calls the factory.

The model contract (docs/ARCHITECTURE.md): in train mode ``model(images)`` returns a dict with
``logits`` and ``model.compute_loss(outputs, labels)`` a dict with ``loss``; in eval mode ``model(images)``
returns logits at the input resolution. Token masks, the scan backend and mask summaries are optional.

This module imports nothing but the standard library, and a family's registration module must not
import torch at module level either (its factory imports the model code), so tables and plots can read
names, sizes and display facts in an interpreter without torch. ``benchmark.models`` imports every family.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

Defaults = Mapping[str, Any] | Callable[[str], Mapping[str, Any]] | None


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """What the registry knows of one registered model name."""
    name: str
    build: Callable[..., Any]                       # build(size, num_classes, **switches) -> nn.Module
    sizes: tuple[str, ...]
    defaults: Defaults
    display_name: str                               # table row label, e.g. "VMamba+UperNet"
    backbone: str                                   # table backbone prefix, e.g. "VMamba" (-> "VMamba-micro")
    color: str                                      # plot colour of our rows
    step_cost: float                                # relative CPU cost of one training step (longest-first order)
    pretrained_files: Mapping[str, str]             # size -> file name of its ImageNet checkpoint (in --pretrained-dir)

    def default_switches(self, size: str) -> dict[str, Any]:
        self.check_size(size)
        if self.defaults is None:
            return {}
        return dict(self.defaults(size) if callable(self.defaults) else self.defaults)

    def check_size(self, size: str) -> None:
        if size not in self.sizes:
            raise ValueError(f"unknown size {size!r} for model {self.name!r}; its sizes: {', '.join(self.sizes)}")


_REGISTRY: dict[str, ModelFamily] = {}


def register_model(name: str, *, sizes, defaults: Defaults = None, display_name: str | None = None,
                   backbone: str | None = None, color: str = "#555555", step_cost: float = 1.0,
                   pretrained_files: Mapping[str, str] | None = None):
    """Decorator registering `build(size, num_classes, **switches)` as model `name`.

    Registering a name twice is an error unless it is the same factory (a module imported twice)."""
    sizes = tuple(sizes)
    if not name or not sizes:
        raise ValueError("register_model needs a name and at least one size")

    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        old = _REGISTRY.get(name)
        if old is not None and old.build.__qualname__ != build.__qualname__:
            raise ValueError(f"model {name!r} is registered already (by {old.build.__module__})")
        _REGISTRY[name] = ModelFamily(
            name=name, build=build, sizes=sizes, defaults=defaults, display_name=display_name or name,
            backbone=backbone or display_name or name, color=color, step_cost=float(step_cost),
            pretrained_files=MappingProxyType(dict(pretrained_files or {})))
        return build

    return decorate


def unregister_model(name: str) -> None:
    """Remove `name` (tests that register a toy family clean up with it)."""
    _REGISTRY.pop(name, None)


def list_models() -> list[str]:
    """Registered names, in registration order."""
    return list(_REGISTRY)


def get_family(name: str) -> ModelFamily:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY) or "none (import benchmark.models to register the families)"
        raise ValueError(f"unknown model {name!r}; valid models: {known}") from None


def is_registered(name: str) -> bool:
    return name in _REGISTRY


def model_sizes(name: str) -> tuple[str, ...]:
    return get_family(name).sizes


def default_switches(name: str, size: str) -> dict[str, Any]:
    """The family's default switches at `size` (a fresh dict)."""
    return get_family(name).default_switches(size)


def build_model(name: str, size: str, num_classes: int = 19, **switches):
    """Build registered model `name` at `size`: its defaults updated by `switches`, unknown ones rejected."""
    family = get_family(name)
    defaults = family.default_switches(size)   # checks the size
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    unknown = sorted(set(switches) - set(defaults))
    elsewhere = {k: sorted(o.name for o in _REGISTRY.values() if o.name != name and k in o.default_switches(o.sizes[0]))
                 for k in unknown}
    stray = [k for k in unknown if not elsewhere[k]]
    if stray:
        raise TypeError(f"build_model: unknown switch(es) {', '.join(stray)} for model {name!r}; "
                        f"known: {', '.join(defaults) or 'none'}")
    if unknown:
        owners = sorted({o for k in unknown for o in elsewhere[k]})
        raise ValueError(f"build_model: switch(es) {', '.join(unknown)} apply to {', '.join(owners)} only, "
                         f"not {name}")
    return family.build(size, num_classes, **{**defaults, **switches})
