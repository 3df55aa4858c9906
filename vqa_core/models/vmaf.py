"""VMAF models in libvmaf's JSON format.

A model file holds a ``model_dict``::

    model_type        "LIBSVMNUSVR" (or a bootstrap type, see below)
    feature_names     libvmaf feature names, e.g. "VMAF_integer_feature_adm2_score"
    feature_opts_dicts  optional, one dict of extractor options per feature
    norm_type         "linear_rescale" or "none"
    slopes, intercepts  [score, feature_1, ..., feature_n] for linear_rescale
    model             LIBSVM model text (nu-SVR)
    score_transform   optional polynomial p0 + p1*y + p2*y^2, piecewise-linear
                      knots, then out_gte_in / out_lte_in rectification;
                      applied only when "enabled" is true
    score_clip        optional [min, max]
    chroma_correction_parameter  optional (VMAF v1): see ``_SvmModel.raw``

Per frame (as libvmaf's predict.c): each feature is normalized
``slope_i * x_i + intercept_i``; the SVR predicts ``y``; ``y`` is
denormalized ``(y - intercept_0) / slope_0``; then transformed and clipped.

A bootstrap file has top-level keys "0", "1", ... each holding a model_dict:
model "0" is trained on all data and gives the score; models "1".."N" are the
bootstrap members.  Their unclipped, untransformed predictions give the
bagging score (mean), the standard deviation and the 2.5/97.5 percentiles
(a 95% confidence interval); these are then transformed and clipped like a
score (using member 1's transform and clip), and the standard deviation is
scaled by the transform's local slope.
"""
from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .libsvm import SVRModel, parse_libsvm

DATA_DIR = Path(__file__).resolve().parent / "data"

Key = Tuple[str, Tuple[Tuple[str, object], ...]]

#: built-in model name -> (file in data/, what it is for)
BUILTIN_MODELS: Dict[str, Tuple[str, str]] = {
    "vmaf_v0.6.1": (
        "vmaf_v0.6.1.json",
        "default VMAF (v0): 1080p HDTV viewed at 3x the display height (3H); "
        "with enable_transform=True it is the phone model"),
    "vmaf_v0.6.1neg": (
        "vmaf_v0.6.1neg.json",
        "v0.6.1 with no enhancement gain (NEG): VIF/ADM gains capped at 1, so "
        "sharpening or contrast boosts cannot raise the score (codec comparison)"),
    "vmaf_4k_v0.6.1": (
        "vmaf_4k_v0.6.1.json",
        "VMAF v0 for a 4K (2160p) TV viewed at 1.5H"),
    "vmaf_b_v0.6.3": (
        "vmaf_b_v0.6.3.json",
        "bootstrap VMAF v0 (1080p, 3H): the score plus a 95% confidence interval, "
        "stddev and bagging score from 20 bootstrap members"),
    "vmaf_v1.0.16_3d0h": (
        "vmaf_v1.0.16_3d0h.json",
        "VMAF v1 (CAMBI banding, chroma, ADM3, motion3): 1080p display at 3H, "
        "range [0, 100]"),
    "vmaf_v1.0.16_5d0h": (
        "vmaf_v1.0.16_5d0h.json",
        "VMAF v1 phone: 1080p display viewed at 5H, range [0, 100]"),
    "vmaf_v1.0.16_1d5h_2160": (
        "vmaf_v1.0.16_1d5h_2160.json",
        "VMAF v1 4K default: 2160p display at 1.5H, range [0, 100]"),
    "vmaf_v1.0.16_3d0h_2160": (
        "vmaf_v1.0.16_3d0h_2160.json",
        "VMAF v1 4K consumer TV: 2160p display at 3H, range [0, 110]"),
    "vmaf_v1.0.16_hfr_3d0h": (
        "vmaf_v1.0.16_hfr_3d0h.json",
        "VMAF v1 for high-frame-rate (~50/60 fps) content: 1080p display at 3H"),
    "vmaf_v1.0.16_hfr_5d0h": (
        "vmaf_v1.0.16_hfr_5d0h.json",
        "VMAF v1 for high-frame-rate content: phone, 1080p display at 5H"),
    "vmaf_v1.0.16_hfr_1d5h_2160": (
        "vmaf_v1.0.16_hfr_1d5h_2160.json",
        "VMAF v1 for high-frame-rate content: 2160p display at 1.5H"),
    "vmaf_v1.0.16_hfr_3d0h_2160": (
        "vmaf_v1.0.16_hfr_3d0h_2160.json",
        "VMAF v1 for high-frame-rate content: 2160p display at 3H, range [0, 110]"),
}

MODEL_TYPES = ("LIBSVMNUSVR", "BOOTSTRAP_LIBSVMNUSVR", "RESIDUEBOOTSTRAP_LIBSVMNUSVR")

#: our feature name -> our extractor name
FEATURE_EXTRACTOR: Dict[str, str] = {
    **{f"vif_scale{i}": "vif" for i in range(4)},
    **{f: "adm" for f in ("adm2", "adm3", "aim", "adm_scale0", "adm_scale1",
                          "adm_scale2", "adm_scale3")},
    **{f: "motion" for f in ("motion", "motion2", "motion3")},
    "cambi": "cambi",
    **{f: "speed" for f in ("speed_chroma_u", "speed_chroma_v", "speed_chroma_uv")},
    "ms_ssim": "ms_ssim",
    **{f: "psnr" for f in ("psnr_y", "psnr_u", "psnr_v")},
    **{f: "ssim" for f in ("ssim_y", "ssim_u", "ssim_v", "ssim")},
}

# libvmaf names that differ from ours beyond the integer_/float_ prefix
_RENAMES = {"psnr_cb": "psnr_u", "psnr_cr": "psnr_v", "float_psnr": "psnr_y",
            "float_ssim": "ssim_y", "float_ms_ssim": "ms_ssim"}
_FLOAT_ONLY = ("float_ssim", "float_ms_ssim", "float_psnr")

#: option-override prefix -> extractor (``cambi.topk`` style keys also work)
OVERRIDE_PREFIXES = (("cambi_", "cambi"), ("enc_", "cambi"), ("adm_", "adm"),
                     ("vif_", "vif"), ("motion_", "motion"), ("speed_", "speed"))


def resolve_feature(json_name: str) -> Tuple[str, str, bool]:
    """libvmaf feature name -> (extractor, our feature name, approximate).

    ``approximate`` is true for libvmaf's floating-point features (e.g.
    ``VMAF_feature_adm2_score``): vqa computes the integer versions, which
    differ from the float ones in the later decimals.
    """
    name = json_name
    approx = False
    m = re.fullmatch(r"VMAF_integer_feature_(\w+)_score", name)
    if m:
        name = m.group(1)
    else:
        m = re.fullmatch(r"VMAF_feature_(\w+)_score", name)
        if m:
            name, approx = m.group(1), True
        else:
            m = re.fullmatch(r"(?:Cambi|Speed_chroma|Speed_temporal)_feature_(\w+)_score", name)
            if m:
                name = m.group(1)
    if name in _RENAMES:
        approx = approx or name in _FLOAT_ONLY
        name = _RENAMES[name]
    elif name.startswith("integer_"):
        name = name[len("integer_"):]
    elif name.startswith("float_"):
        name, approx = name[len("float_"):], True
    ext = FEATURE_EXTRACTOR.get(name)
    if ext is None:
        ext = _registry_lookup(name)
    if ext is None:
        raise ValueError(f"model feature {json_name!r} is not provided by any vqa feature "
                         f"extractor (known features: {', '.join(sorted(FEATURE_EXTRACTOR))})")
    return ext, name, approx


def _registry_lookup(feature: str) -> Optional[str]:
    try:
        from ..features.registry import extractor_for_feature
        return extractor_for_feature(feature).name
    except Exception:
        return None


def _key(extractor: str, options: Mapping[str, object]) -> Key:
    # must match vqa_core.engine._key
    return extractor, tuple(sorted(options.items()))


# ---------------------------------------------------------------- model parts

@dataclass
class ModelFeature:
    """One input of a model: where it comes from and how it is normalized."""

    json_name: str          # as in the model file
    extractor: str          # our extractor name
    feature: str            # our feature name
    options: Dict[str, object]
    slope: float = 1.0
    intercept: float = 0.0
    approximate: bool = False

    @property
    def key(self) -> Key:
        return _key(self.extractor, self.options)


@dataclass
class ScoreTransform:
    enabled: bool = False
    p0: Optional[float] = None
    p1: Optional[float] = None
    p2: Optional[float] = None
    knots: Optional[List[Tuple[float, float]]] = None
    out_lte_in: bool = False
    out_gte_in: bool = False

    def apply(self, y: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return y
        y_in = y
        if self.p0 is not None or self.p1 is not None or self.p2 is not None:
            out = np.zeros_like(y)
            if self.p0 is not None:
                out = out + self.p0
            if self.p1 is not None:
                out = out + self.p1 * y
            if self.p2 is not None:
                out = out + self.p2 * y * y
        else:
            out = y
        if self.knots:
            out = _piecewise_linear(out, self.knots)
        if self.out_lte_in:
            out = np.where(out > y_in, y_in, out)
        if self.out_gte_in:
            out = np.where(out < y_in, y_in, out)
        return out


def _line(p, q) -> Tuple[float, float]:
    (x1, y1), (x2, y2) = p, q
    if x2 - x1 == 0 or y2 - y1 == 0:
        return 1.0, 0.0  # only reached for identical points
    if x1 == 0:
        beta = y1
        return (y2 - beta) / x2, beta
    alpha = (y2 - y1) / (x2 - x1)
    return alpha, y1 - x1 * alpha


def _piecewise_linear(x: np.ndarray, knots) -> np.ndarray:
    """Segments between knots, extrapolating the first and last segments."""
    out = np.zeros_like(x)
    nseg = len(knots) - 1
    for i in range(nseg):
        (x0, y0), (x1, y1) = knots[i], knots[i + 1]
        if y0 == y1:
            val = np.full_like(x, y0)
        else:
            a, b = _line(knots[i], knots[i + 1])
            val = a * x + b
        mask = (x0 <= x) & (x <= x1)
        if i == 0:
            mask |= x < x0
        if i == nseg - 1:
            mask |= x > x1
        out = np.where(mask, val, out)
    return out


def _clip(y: np.ndarray, clip: Optional[Tuple[float, float]]) -> np.ndarray:
    if clip is None:
        return y
    lo, hi = clip
    y = np.where(y < lo, lo, y)
    return np.where(y > hi, hi, y)


class _SvmModel:
    """One model_dict: normalization, SVR, denormalization, transform, clip."""

    def __init__(self, md: dict, where: str, overrides: Dict[str, Dict[str, object]],
                 disable_clip: bool, enable_transform: bool):
        if not isinstance(md, dict):
            raise ValueError(f"{where}: 'model_dict' must be an object")
        mt = md.get("model_type")
        if mt not in MODEL_TYPES:
            raise ValueError(f"{where}: unsupported model_type {mt!r}; "
                             f"supported: {', '.join(MODEL_TYPES)}")
        self.model_type = mt
        names = md.get("feature_names")
        if (not isinstance(names, list) or not names
                or not all(isinstance(n, str) for n in names)):
            raise ValueError(f"{where}: 'feature_names' must be a non-empty list of strings")
        n = len(names)
        opts = md.get("feature_opts_dicts") or []
        if not isinstance(opts, list) or len(opts) > n or not all(isinstance(o, dict) for o in opts):
            raise ValueError(f"{where}: 'feature_opts_dicts' must be a list of at most "
                             f"{n} objects (one per feature)")
        opts = list(opts) + [{}] * (n - len(opts))

        norm = md.get("norm_type")
        if norm not in ("linear_rescale", "none"):
            hint = (" (a training-time norm_type; a trained model_dict has "
                    "'linear_rescale' or 'none')" if norm in
                    ("clip_0to1", "clip_minus1to1", "normalize", "custom_clip_0to1") else "")
            raise ValueError(f"{where}: unsupported norm_type {norm!r}{hint}")
        self.norm_type = norm
        if norm == "linear_rescale":
            slopes, intercepts = md.get("slopes"), md.get("intercepts")
            for label, arr in (("slopes", slopes), ("intercepts", intercepts)):
                if (not isinstance(arr, list) or len(arr) != n + 1
                        or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                   for v in arr)):
                    raise ValueError(f"{where}: '{label}' must be a list of {n + 1} numbers "
                                     f"(the score's, then one per feature)")
            if slopes[0] == 0:
                raise ValueError(f"{where}: the score slope (slopes[0]) is zero")
        else:
            slopes, intercepts = [1.0] * (n + 1), [0.0] * (n + 1)
        self.slope, self.intercept = float(slopes[0]), float(intercepts[0])

        self.features: List[ModelFeature] = []
        for i, (name, o) in enumerate(zip(names, opts)):
            ext, feat, approx = resolve_feature(name)
            o = dict(o)
            o.update(overrides.get(ext, {}))
            self.features.append(ModelFeature(name, ext, feat, o, float(slopes[i + 1]),
                                              float(intercepts[i + 1]), approx))
        # a model that uses no AIM output (every v0 model) lets ADM skip the AIM
        # half of its work; adm2 and the scales are unchanged
        adm = [f for f in self.features if f.extractor == "adm"]
        if adm and not any(f.feature in ("aim", "adm3") for f in adm):
            for f in adm:
                f.options.setdefault("adm_skip_aim", True)
        self._fslope = np.array([f.slope for f in self.features])
        self._fintercept = np.array([f.intercept for f in self.features])

        text = md.get("model")
        if not isinstance(text, str):
            raise ValueError(f"{where}: 'model' (LIBSVM model text) is missing")
        try:
            self.svr: SVRModel = parse_libsvm(text)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

        self.transform = _parse_transform(md.get("score_transform"), where, enable_transform)
        sc = md.get("score_clip")
        self.clip: Optional[Tuple[float, float]] = None
        if sc is not None:
            if (not isinstance(sc, list) or len(sc) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sc)):
                raise ValueError(f"{where}: 'score_clip' must be [min, max]")
            if not disable_clip:
                self.clip = (float(sc[0]), float(sc[1]))

        # chroma from luma (VMAF v1): when the chroma speed feature is exactly
        # 0 (libvmaf reports 0 when it cannot measure it), it is replaced by
        # c * (1 - adm3), c = chroma_correction_parameter
        self.chroma_correction: Optional[Tuple[float, int, int]] = None
        ccp = md.get("chroma_correction_parameter")
        if ccp is not None:
            if not isinstance(ccp, (int, float)) or isinstance(ccp, bool):
                raise ValueError(f"{where}: 'chroma_correction_parameter' must be a number")
            guiding = [i for i, f in enumerate(names) if "adm3" in f]
            guided = [i for i, f in enumerate(names) if "speed_chroma" in f]
            if len(guiding) > 1 or len(guided) > 1:
                raise ValueError(f"{where}: chroma_correction_parameter needs at most one "
                                 f"'adm3' and one 'speed_chroma' feature")
            if ccp != 0 and guiding and guided:
                self.chroma_correction = (float(ccp), guiding[0], guided[0])

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Denormalized predictions (before transform and clip) for rows of
        feature values, columns in ``self.features`` order."""
        if self.norm_type == "linear_rescale":
            xn = self._fslope * x + self._fintercept
        else:
            xn = np.array(x, dtype=np.float64)
        if self.chroma_correction is not None:
            c, gi, di = self.chroma_correction
            if self.norm_type == "linear_rescale":
                # values as libvmaf sees them: normalized, then denormalized
                g = (xn[:, gi] - self._fintercept[gi]) / self._fslope[gi]
                d = (xn[:, di] - self._fintercept[di]) / self._fslope[di]
                corr = self._fslope[di] * ((-c * g) + c) + self._fintercept[di]
            else:
                g, d = xn[:, gi], xn[:, di]
                corr = (-c * g) + c
            xn[:, di] = np.where(d == 0.0, corr, xn[:, di])
        y = self.svr.predict(xn)
        if self.norm_type == "linear_rescale":
            y = (y - self.intercept) / self.slope
        return y

    def finish(self, y: np.ndarray) -> np.ndarray:
        return _clip(self.transform.apply(y), self.clip)


def _parse_transform(st, where: str, enable: bool) -> ScoreTransform:
    t = ScoreTransform()
    if st is None:
        return t
    if not isinstance(st, dict):
        raise ValueError(f"{where}: 'score_transform' must be an object")
    en = st.get("enabled", False)
    if not isinstance(en, bool):
        raise ValueError(f"{where}: score_transform 'enabled' must be true or false")
    t.enabled = en or enable
    for p in ("p0", "p1", "p2"):
        v = st.get(p)
        if v is not None:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ValueError(f"{where}: score_transform '{p}' must be a number or null")
            setattr(t, p, float(v))
    kn = st.get("knots")
    if kn is not None:
        try:
            knots = [(float(a), float(b)) for a, b in kn]
        except (TypeError, ValueError):
            raise ValueError(f"{where}: score_transform 'knots' must be a list of [x, y]") from None
        if len(knots) < 2 or any(not (p[0] < q[0] and p[1] <= q[1])
                                 for p, q in zip(knots, knots[1:])):
            raise ValueError(f"{where}: score_transform 'knots' must be at least two points "
                             f"with increasing x and non-decreasing y")
        t.knots = knots
    for k in ("out_lte_in", "out_gte_in"):
        v = st.get(k, "false")
        if v not in ("true", "false", True, False):
            raise ValueError(f"{where}: score_transform '{k}' must be \"true\" or \"false\"")
        setattr(t, k, v in ("true", True))
    return t


# ---------------------------------------------------------------- public models

class VmafModel:
    """A libvmaf JSON model, usable by :class:`vqa_core.engine.Scorer`.

    ``name``: the model's name (built-in name or file stem).
    ``output_prefix``: the record key of the score (default ``"vmaf"``); set it
    (e.g. to the model name) when several models score one stream.
    ``outputs``: the record keys :meth:`predict` returns.
    """

    bootstrap = False

    def __init__(self, name: str, parts: List[_SvmModel], path: Optional[Path] = None,
                 description: str = "", output_prefix: str = "vmaf"):
        self.name = name
        self.path = path
        self.description = description
        self.output_prefix = output_prefix
        self._parts = parts
        # distinct inputs over all parts, in first-seen order
        self._inputs: List[Tuple[Key, str]] = []
        self._cols: List[np.ndarray] = []
        index: Dict[Tuple[Key, str], int] = {}
        for part in parts:
            cols = []
            for f in part.features:
                ident = (f.key, f.feature)
                if ident not in index:
                    index[ident] = len(self._inputs)
                    self._inputs.append(ident)
                cols.append(index[ident])
            self._cols.append(np.array(cols, dtype=np.intp))
        self._input_specs = {}
        for part in parts:
            for f in part.features:
                self._input_specs.setdefault((f.key, f.feature), f)
        approx = sorted({f.json_name for f in self.features if f.approximate})
        if approx:
            warnings.warn(f"model {name!r} uses libvmaf float features ({', '.join(approx)}); "
                          f"vqa computes the integer versions, so scores are approximate",
                          stacklevel=3)

    # -- description of inputs

    @property
    def features(self) -> List[ModelFeature]:
        """The distinct inputs: one :class:`ModelFeature` each."""
        return [self._input_specs[i] for i in self._inputs]

    @property
    def outputs(self) -> Tuple[str, ...]:
        return (self.output_prefix,)

    def extractors(self) -> List[Tuple[str, Dict[str, object]]]:
        """``(extractor_name, options)`` for each distinct extractor instance needed."""
        seen, out = set(), []
        for (key, _feat) in self._inputs:
            if key not in seen:
                seen.add(key)
                out.append((key[0], dict(key[1])))
        return out

    # -- prediction

    def predict(self, features: Mapping[Key, Mapping[str, float]]) -> Dict[str, Optional[float]]:
        """Score one frame from extractor outputs keyed as the engine keys them:
        ``{(extractor, tuple(sorted(options.items()))): {feature: value}}``.

        A frame with a missing feature value gets ``None`` for every output.
        """
        row = np.empty(len(self._inputs))
        for j, (key, feat) in enumerate(self._inputs):
            v = features.get(key, {}).get(feat)
            if v is None:
                return {k: None for k in self.outputs}
            row[j] = v
        res = self._predict_rows(row[None, :])
        return {k: float(v[0]) for k, v in res.items()}

    def predict_features(self, values: Mapping[str, float]) -> Dict[str, float]:
        """Score one frame from ``{feature: value}`` (our names such as
        ``adm2``, or the model file's names such as
        ``VMAF_integer_feature_adm2_score``)."""
        res = self.predict_batch({k: [v] for k, v in values.items()})
        return {k: float(v[0]) for k, v in res.items()}

    def predict_batch(self, table: Mapping[str, Sequence[float]]) -> Dict[str, np.ndarray]:
        """Score many frames: ``{feature: values per frame}`` -> ``{output: array}``."""
        cols = []
        for j, (key, feat) in enumerate(self._inputs):
            spec = self._input_specs[(key, feat)]
            cands = [k for k in (spec.json_name, feat) if k in table]
            if not cands:
                raise KeyError(f"model {self.name!r} needs feature {feat!r} "
                               f"({spec.json_name}); given: {', '.join(sorted(table)) or 'none'}")
            if cands[0] == feat and self._ambiguous(feat):
                raise KeyError(f"model {self.name!r} uses feature {feat!r} with several option "
                               f"sets; give values by the model file's feature names")
            cols.append(np.asarray(table[cands[0]], dtype=np.float64).reshape(-1))
        n = {len(c) for c in cols}
        if len(n) != 1:
            raise ValueError("feature value sequences have different lengths")
        return self._predict_rows(np.stack(cols, axis=1))

    def _ambiguous(self, feat: str) -> bool:
        return sum(1 for _k, f in self._inputs if f == feat) > 1

    def _predict_rows(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        part = self._parts[0]
        return {self.output_prefix: part.finish(part.raw(x[:, self._cols[0]]))}

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, outputs={self.outputs})"


class BootstrapVmafModel(VmafModel):
    """A bootstrap collection (e.g. ``vmaf_b_v0.6.3``).

    Outputs, named like libvmaf's: ``P`` (the full-data model's score),
    ``P_bagging``, ``P_stddev``, ``P_ci_low``, ``P_ci_high`` where ``P`` is
    ``output_prefix``; with ``members=True`` also ``P_0001``... (each member's
    score, transformed and clipped as libvmaf reports them).
    """

    bootstrap = True

    def __init__(self, *args, members: bool = False, **kw):
        super().__init__(*args, **kw)
        self.members = members

    @property
    def n_members(self) -> int:
        return len(self._parts) - 1

    @property
    def outputs(self) -> Tuple[str, ...]:
        p = self.output_prefix
        out = (p, f"{p}_bagging", f"{p}_stddev", f"{p}_ci_low", f"{p}_ci_high")
        if self.members:
            out += tuple(f"{p}_{i:04d}" for i in range(1, self.n_members + 1))
        return out

    def _predict_rows(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        p = self.output_prefix
        main = self._parts[0]
        out = {p: main.finish(main.raw(x[:, self._cols[0]]))}
        members = self._parts[1:]
        raw = np.stack([m.raw(x[:, c]) for m, c in zip(members, self._cols[1:])], axis=1)
        m = raw.shape[1]
        mean = raw.sum(axis=1) / m
        std = np.sqrt(((raw - mean[:, None]) ** 2).sum(axis=1) / m)
        srt = np.sort(raw, axis=1)
        lo, hi = _percentile(srt, 2.5), _percentile(srt, 97.5)
        first = members[0]  # libvmaf transforms the statistics with member 1
        delta = 0.01
        plus, minus = first.finish(mean + delta), first.finish(mean - delta)
        slope = (plus - minus) / (2.0 * delta)
        out[f"{p}_bagging"] = first.finish(mean)
        out[f"{p}_stddev"] = std * slope
        out[f"{p}_ci_low"] = first.finish(lo)
        out[f"{p}_ci_high"] = first.finish(hi)
        if self.members:
            for i, mdl in enumerate(members):
                out[f"{p}_{i + 1:04d}"] = mdl.finish(raw[:, i])
        return out


def _percentile(sorted_rows: np.ndarray, perc: float) -> np.ndarray:
    n = sorted_rows.shape[1]
    p = perc * (n - 1) / 100.0
    lo, hi = math.floor(p), math.ceil(p)
    if lo == hi:
        return sorted_rows[:, lo]
    return sorted_rows[:, lo] * (hi - p) + sorted_rows[:, hi] * (p - lo)


# ---------------------------------------------------------------- loading

def builtin_models() -> List[Tuple[str, str]]:
    """``(name, what it is for)`` for every built-in model."""
    return [(n, d) for n, (_f, d) in BUILTIN_MODELS.items()]


def _split_overrides(options: Mapping[str, object]) -> Dict[str, Dict[str, object]]:
    out: Dict[str, Dict[str, object]] = {}
    for k, v in options.items():
        if "." in k:
            ext, opt = k.split(".", 1)
            if not ext or not opt:
                raise ValueError(f"bad feature option {k!r}; use 'extractor.option'")
        else:
            for prefix, ext in OVERRIDE_PREFIXES:
                if k.startswith(prefix):
                    opt = k
                    break
            else:
                raise ValueError(
                    f"unknown model option {k!r}: feature options start with "
                    f"{', '.join(p for p, _ in OVERRIDE_PREFIXES)} or are written "
                    f"'extractor.option' (e.g. 'cambi.topk')")
        out.setdefault(ext, {})[opt] = v
    return out


def load_model(name_or_path, *, name: Optional[str] = None, output_prefix: str = "vmaf",
               disable_clip: bool = False, enable_transform: bool = False,
               members: bool = False, **options) -> VmafModel:
    """Load a built-in model by name (see :func:`builtin_models`) or a libvmaf
    JSON model file by path.

    ``name``: the model's name (default: the built-in name or the file stem).
    ``output_prefix``: the record key of the score (default ``vmaf``).
    ``disable_clip``, ``enable_transform``: as libvmaf's model flags (the
    v0.6.1 model with ``enable_transform=True`` is the phone model).
    ``members``: a bootstrap model also outputs each member's score.
    ``options``: extractor options for the model's features, routed by prefix
    (``cambi_*``/``enc_*`` to cambi, ``adm_*``, ``vif_*``, ``motion_*``,
    ``speed_*``) or written ``"extractor.option"``; they override the model
    file's options for every feature of that extractor, and are ignored for
    extractors the model does not use (as in libvmaf).
    """
    overrides = _split_overrides(options)
    spec = os.fspath(name_or_path)
    if spec.startswith("version="):
        spec = spec[len("version="):]
    elif spec.startswith("path="):
        spec = spec[len("path="):]
    description = ""
    if spec in BUILTIN_MODELS:
        fname, description = BUILTIN_MODELS[spec]
        path = DATA_DIR / fname
        default_name = spec
    else:
        path = Path(spec).expanduser()
        looks_like_path = spec.endswith(".json") or os.sep in spec or "/" in spec
        if not path.is_file():
            if looks_like_path:
                raise ValueError(f"no such model file: {spec}")
            raise ValueError(f"unknown model {spec!r}; built-in models: "
                             f"{', '.join(BUILTIN_MODELS)} (or give a path to a libvmaf "
                             f"JSON model)")
        default_name = path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read model file {path}: {e}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        msg = (" (pickle models are not supported; use libvmaf's JSON models)"
               if path.suffix == ".pkl" else "")
        raise ValueError(f"model file {path} is not valid JSON: {e}{msg}") from None
    return model_from_dict(doc, name=name or default_name, path=path, description=description,
                           output_prefix=output_prefix, disable_clip=disable_clip,
                           enable_transform=enable_transform, members=members,
                           _overrides=overrides)


def model_from_dict(doc, *, name: str = "model", path: Optional[Path] = None,
                    description: str = "", output_prefix: str = "vmaf",
                    disable_clip: bool = False, enable_transform: bool = False,
                    members: bool = False, _overrides=None, **options) -> VmafModel:
    """Build a model from a parsed libvmaf JSON document."""
    overrides = _overrides if _overrides is not None else _split_overrides(options)
    where = str(path) if path else name
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: a libvmaf model is a JSON object")
    kw = dict(overrides=overrides, disable_clip=disable_clip, enable_transform=enable_transform)
    if "model_dict" in doc:
        part = _SvmModel(doc["model_dict"], where, **kw)
        return VmafModel(name, [part], path, description, output_prefix)
    if "0" in doc:
        parts = []
        i = 0
        while str(i) in doc:
            sub = doc[str(i)]
            if not isinstance(sub, dict) or "model_dict" not in sub:
                raise ValueError(f"{where}: bootstrap member {i} has no 'model_dict'")
            parts.append(_SvmModel(sub["model_dict"], f"{where} [model {i}]", **kw))
            i += 1
        if len(parts) < 2:
            raise ValueError(f"{where}: a bootstrap model needs models '0' and '1' at least")
        return BootstrapVmafModel(name, parts, path, description, output_prefix,
                                  members=members)
    raise ValueError(f"{where}: no 'model_dict' (nor bootstrap models '0', '1', ...) in the file")


# ---------------------------------------------------------------- model specs

#: ``load_model`` keywords a spec may set; every other option is a feature option
_SPEC_FLAGS = ("disable_clip", "enable_transform", "members")


def _spec_value(v: str):
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def parse_model_spec(spec: str) -> Tuple[str, Dict[str, object]]:
    """Split ``NAME|PATH[:option=value...]`` into the model and its options.

    Options are ``name=`` (the record key of the score), ``disable_clip``,
    ``enable_transform``, ``members`` (booleans) and feature options routed as
    in :func:`load_model` (``cambi.enc_width=1280``, ``enc_width=1280``,
    ``adm_enhn_gain_limit=1.0``).  A path may itself contain ``:``; the
    options start at the first ``:`` followed by ``word=``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty model spec")
    m = re.search(r":(?=[A-Za-z_][\w.]*=)", spec)
    head, tail = (spec[:m.start()], spec[m.start() + 1:]) if m else (spec, "")
    if not head:
        raise ValueError(f"model spec {spec!r} names no model")
    opts: Dict[str, object] = {}
    if tail:
        for part in tail.split(":"):
            if "=" not in part:
                raise ValueError(f"model spec {spec!r}: option {part!r} is not 'key=value'")
            k, v = part.split("=", 1)
            if not k:
                raise ValueError(f"model spec {spec!r}: option {part!r} has no name")
            opts[k] = _spec_value(v)
    return head, opts


def load_model_spec(spec: str, key_by_name: bool = False) -> VmafModel:
    """Load a model from a ``NAME|PATH[:option=value...]`` spec (the CLI's
    ``--model``).  The record key is the spec's ``name=``, else the model's
    name (built-in name or file stem) with ``key_by_name`` (several models in
    one run), else ``vmaf``."""
    target, opts = parse_model_spec(spec)
    key = opts.pop("name", None)
    kw = {k: opts.pop(k) for k in _SPEC_FLAGS if k in opts}
    for k, v in kw.items():
        if not isinstance(v, bool):
            raise ValueError(f"model spec {spec!r}: {k} must be true or false, got {v!r}")
    model = load_model(target, output_prefix=str(key) if key is not None else "vmaf", **kw, **opts)
    if key is None and key_by_name:
        model.output_prefix = model.name
    return model
