"""The transforms a quality variant is built from (pruning, conversions, quantization), found by
scanning this package: each module registers its steps with ``registry.register`` where it
defines them, so a new technique is one module here and one line of
``studylib/quality/variants.yaml``; nothing lists it by hand. See ``registry`` for the contract.
"""
from __future__ import annotations

import importlib
import pkgutil

from studylib.quality.transforms.registry import (  # noqa: F401
    TRANSFORMS,
    VARIANTS_FILE,
    Transform,
    apply,
    check_steps,
    declared_variants,
    pruning_ratio,
    register,
    split_at_cast,
    variant,
    weights_only,
    with_role,
    without_pruning,
)

for _m in pkgutil.iter_modules(__path__):  # register every transform module's steps
    importlib.import_module(f"{__name__}.{_m.name}")
