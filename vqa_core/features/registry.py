"""Resolve feature names to extractor classes.

Adding a feature is adding one module under ``vqa_core/features`` that defines
a :class:`FeatureExtractor` subclass decorated with :func:`register`, and
naming that module in ``_MODULES``.
"""
from __future__ import annotations

import importlib
from typing import Dict, Type

from .base import FeatureExtractor

_EXTRACTORS: Dict[str, Type[FeatureExtractor]] = {}
_BY_FEATURE: Dict[str, str] = {}
# modules that define extractors; imported lazily so that numba compiles only
# what a run needs
_MODULES = ("psnr", "ssim", "vif", "adm", "motion", "ms_ssim", "cambi", "speed")
_loaded = False

#: extractors that read only the luma planes (their ``reads_chroma`` is
#: False; tests/test_graph.py checks that the two agree): a run of only these
#: has ffmpeg send luma alone.  Known here without importing their modules,
#: which import Numba.
LUMA_ONLY = frozenset({"vif", "adm", "motion", "cambi", "ms_ssim"})


def reads_chroma(name: str) -> bool:
    """Whether extractor ``name`` reads the chroma planes (unknown: True)."""
    return name not in LUMA_ONLY


def register(cls: Type[FeatureExtractor]) -> Type[FeatureExtractor]:
    _EXTRACTORS[cls.name] = cls
    for f in cls.provides:
        _BY_FEATURE[f] = cls.name
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for m in _MODULES:
        _load(m)
    _loaded = True


def extractor_names():
    _load_all()
    return sorted(_EXTRACTORS)


def _load(module: str) -> None:
    try:
        importlib.import_module(f"{__package__}.{module}")
    except ModuleNotFoundError as e:  # a feature module not written yet
        if e.name != f"{__package__}.{module}":
            raise


def get_extractor(name: str) -> Type[FeatureExtractor]:
    # an extractor lives in the module of its name: import just that one
    # (the others' imports cost a run's start-up ~0.05 s for nothing)
    if name not in _EXTRACTORS and name in _MODULES:
        _load(name)
    if name not in _EXTRACTORS:
        _load_all()
    try:
        return _EXTRACTORS[name]
    except KeyError:
        raise KeyError(f"unknown feature extractor {name!r}; known: "
                       f"{', '.join(sorted(_EXTRACTORS))}") from None


def extractor_for_feature(feature: str) -> Type[FeatureExtractor]:
    _load_all()
    try:
        return _EXTRACTORS[_BY_FEATURE[feature]]
    except KeyError:
        raise KeyError(f"no extractor provides feature {feature!r}") from None
