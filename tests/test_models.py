"""VMAF models (vqa_core.models) against libvmaf.

These tests do not use our feature kernels: the bundled ffmpeg's libvmaf
filter computes the features and its own score; we feed libvmaf's per-frame
feature values (from its JSON log) to our model and compare the scores.
libvmaf's log rounds every value to 6 decimals, which alone moves a score by
up to ~2e-4; the tolerance is 1e-3.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import oracle as o
from vqa_core.engine import _key as engine_key
from vqa_core.models import (BUILTIN_MODELS, DATA_DIR, builtin_models, load_model,
                             model_from_dict, parse_libsvm)

TOL = 1e-3
SINGLE = [n for n in BUILTIN_MODELS if n != "vmaf_b_v0.6.3"]


# ---------------------------------------------------------------- media

@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """(ref, dis) y4m pairs: 8-bit and 10-bit 640x480 (the prescaled chroma
    speed of the 5d0h/3d0h_2160 models needs at least that), an odd size,
    6 frames of x264 at a low quality."""
    tmp = tmp_path_factory.mktemp("models")
    out = {}
    for tag, size, pix in (("8bit", "640x480", "yuv420p"), ("10bit", "640x480", "yuv420p10le"),
                           ("odd", "642x362", "yuv420p")):
        ref = o.make_clip(tmp / f"ref_{tag}.y4m", size=size, duration=0.24, pix_fmt=pix)
        enc = o.encode(ref, tmp / f"dis_{tag}.mp4",
                       ["-c:v", "libx264", "-crf", "38", "-pix_fmt", pix])
        dis = o.decode_y4m(enc, tmp / f"dis_{tag}.y4m", pix_fmt=pix)
        out[tag] = (ref, dis)
    return tmp, out


def log_alias(json_name: str) -> str:
    """libvmaf's log name (without option suffixes) of a model feature."""
    m = re.fullmatch(r"VMAF_integer_feature_(\w+)_score", json_name)
    if m:
        return "integer_" + m.group(1)
    m = re.fullmatch(r"\w+?_feature_(\w+)_score", json_name)
    assert m, json_name
    return m.group(1)


def log_features(model, metrics: dict) -> dict:
    """{model file feature name: value} from one frame of libvmaf's log (the log
    key is the alias plus option suffixes, e.g. integer_adm2_egl_1)."""
    vals = {}
    for spec in model.features:
        base = log_alias(spec.json_name)
        keys = [k for k in metrics if k == base or k.startswith(base + "_")]
        assert len(keys) == 1, (spec.json_name, keys)
        vals[spec.json_name] = metrics[keys[0]]
    return vals


def compare(model, frames, key="vmaf", out_key=None):
    errs = []
    for f in frames:
        ours = model.predict_features(log_features(model, f))
        errs.append(abs(ours[out_key or model.output_prefix] - f[key]))
    return max(errs)


# ---------------------------------------------------------------- libvmaf oracle

@pytest.mark.parametrize("tag", ["8bit", "10bit", "odd"])
@pytest.mark.parametrize("name", SINGLE)
def test_builtin_model_matches_libvmaf(media, name, tag):
    tmp, pairs = media
    ref, dis = pairs[tag]
    frames = o.libvmaf_frames(o.libvmaf(ref, dis, tmp, model=f"version={name}"))
    assert len(frames) == 6
    model = load_model(name)
    err = compare(model, frames)
    print(f"{name} {tag}: max |vmaf - libvmaf| = {err:.2e}")
    assert err < TOL


def test_chroma_correction_is_exercised(media):
    """v1 models replace a zero chroma speed by c*(1-adm3); our clips give a
    zero speed for the prescaled models and a non-zero one for the others."""
    tmp, pairs = media
    ref, dis = pairs["8bit"]
    seen = {}
    for name in ("vmaf_v1.0.16_3d0h", "vmaf_v1.0.16_5d0h"):
        model = load_model(name)
        frames = o.libvmaf_frames(o.libvmaf(ref, dis, tmp, model=f"version={name}"))
        speeds = [log_features(model, f)["Speed_chroma_feature_speed_chroma_uv_score"]
                  for f in frames]
        seen[name] = speeds
        assert compare(model, frames) < TOL
        if all(s == 0.0 for s in speeds):
            # without the correction the score would be far off
            model._parts[0].chroma_correction = None
            assert compare(model, frames) > 0.1
    assert any(s != 0.0 for s in seen["vmaf_v1.0.16_3d0h"])
    assert all(s == 0.0 for s in seen["vmaf_v1.0.16_5d0h"])


@pytest.mark.parametrize("pair", ["same", "dis"])
def test_model_flags_match_libvmaf(media, pair):
    """disable_clip and enable_transform (the phone model) as libvmaf's model
    options; identical frames score above 100 without the clip."""
    tmp, pairs = media
    ref, dis = pairs["8bit"]
    if pair == "same":
        dis = ref
    variants = {
        "a": ("vmaf_v0.6.1", {}),
        "b": ("vmaf_v0.6.1", {"enable_transform": True}),
        "c": ("vmaf_v0.6.1", {"disable_clip": True}),
        "d": ("vmaf_v1.0.16_3d0h", {}),
        "e": ("vmaf_v1.0.16_3d0h", {"disable_clip": True}),
    }
    spec = "|".join(f"version={n}:name={k}" + "".join(f":{f}=true" for f in flags)
                    for k, (n, flags) in variants.items())
    # several models in one run: give feature values by extractor key instead of
    # log names (the log holds the same feature under several option suffixes)
    frames = o.libvmaf_frames(o.libvmaf(ref, dis, tmp, model=spec))
    for k, (n, flags) in variants.items():
        m = load_model(n, output_prefix=k, **flags)
        for f in frames:
            vals = {}
            for s in m.features:
                base = log_alias(s.json_name)
                cands = sorted((key for key in f if key == base or key.startswith(base + "_")),
                               key=len)
                # the model's own options make the longest suffix in these runs
                # (adm_skip_aim is vqa's own saving: libvmaf's log has no suffix for it)
                own = {o: v for o, v in s.options.items() if o != "adm_skip_aim"}
                vals[s.json_name] = f[cands[-1]] if own else f[cands[0]]
            assert abs(m.predict_features(vals)[k] - f[k]) < TOL, (k, f[k])
    if pair == "same":
        assert max(f["e"] for f in frames) > 100.0
        assert max(f["d"] for f in frames) == 100.0


def test_bootstrap_matches_libvmaf(media, tmp_path):
    """vmaf_b_v0.6.3: ffmpeg's libvmaf filter cannot load a bootstrap
    collection, so each member is run as its own model: the full-data model
    gives "vmaf", members give vmaf_0001... (clipped, as libvmaf reports them)
    and, with disable_clip, the raw scores that libvmaf's bagging, stddev and
    95% interval are computed from."""
    tmp, pairs = media
    ref, dis = pairs["8bit"]
    doc = json.loads((DATA_DIR / "vmaf_b_v0.6.3.json").read_text())
    n = 0
    specs = []
    while str(n) in doc:
        p = tmp_path / f"m{n}.json"
        p.write_text(json.dumps(doc[str(n)]))
        if n == 0:
            specs.append(f"path={p}:name=vmaf")
        else:
            specs.append(f"path={p}:name=vmaf_{n:04d}")
            specs.append(f"path={p}:name=raw_{n:04d}:disable_clip=true")
        n += 1
    assert n == 21
    frames = o.libvmaf_frames(o.libvmaf(ref, dis, tmp_path, model="|".join(specs)))
    model = load_model("vmaf_b_v0.6.3", members=True)
    assert model.n_members == 20
    errs = {}
    for f in frames:
        ours = model.predict_features(log_features(model, f))
        raw = np.sort([f[f"raw_{i:04d}"] for i in range(1, n)])
        mean = raw.mean()
        expect = {
            "vmaf": f["vmaf"],
            "vmaf_bagging": min(max(mean, 0.0), 100.0),
            # the transform is disabled and the mean is inside the clip range:
            # the stddev is not rescaled
            "vmaf_stddev": raw.std() if 0.01 < mean < 99.99 else None,
            "vmaf_ci_low": min(max(np.percentile(raw, 2.5), 0.0), 100.0),
            "vmaf_ci_high": min(max(np.percentile(raw, 97.5), 0.0), 100.0),
            **{f"vmaf_{i:04d}": f[f"vmaf_{i:04d}"] for i in range(1, n)},
        }
        assert set(ours) == set(model.outputs)
        for k, v in expect.items():
            if v is None:
                continue
            errs[k] = max(errs.get(k, 0.0), abs(ours[k] - v))
        assert ours["vmaf_ci_low"] <= ours["vmaf_bagging"] <= ours["vmaf_ci_high"]
    print({k: f"{v:.1e}" for k, v in errs.items() if not k[-1].isdigit()},
          "members", f"{max(v for k, v in errs.items() if k[-1].isdigit()):.1e}")
    assert max(errs.values()) < TOL


# ---------------------------------------------------------------- slow twins

def svr_twin(text: str, x) -> float:
    """LIBSVM's sparse RBF/nu-SVR decision value, written out plainly."""
    lines = text.splitlines()
    head = {}
    i = 0
    while lines[i].split()[0] != "SV":
        parts = lines[i].split()
        head[parts[0]] = parts[1:]
        i += 1
    gamma, rho = float(head["gamma"][0]), float(head["rho"][0])
    xs = {j + 1: float(v) for j, v in enumerate(x)}
    total = 0.0
    for line in lines[i + 1:]:
        parts = line.split()
        if not parts:
            continue
        sv = {int(k): float(v) for k, v in (p.split(":") for p in parts[1:])}
        d2 = 0.0
        for idx in set(sv) | set(xs):
            d = xs.get(idx, 0.0) - sv.get(idx, 0.0)
            d2 += d * d
        total += float(parts[0]) * math.exp(-gamma * d2)
    return total - rho


@pytest.mark.parametrize("name", ["vmaf_v0.6.1", "vmaf_4k_v0.6.1", "vmaf_v1.0.16_3d0h"])
def test_svr_matches_twin(name):
    md = json.loads((DATA_DIR / BUILTIN_MODELS[name][0]).read_text())["model_dict"]
    svr = parse_libsvm(md["model"])
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.2, 1.2, (7, len(md["feature_names"])))
    got = svr.predict(x)
    for row, g in zip(x, got):
        assert abs(g - svr_twin(md["model"], row)) < 1e-9
    assert abs(svr.predict(x[0]) - got[0]) < 1e-12


def test_svr_sums_terms_in_order():
    """The decision value adds coef * K term after term, as LIBSVM does
    (bit for bit; a BLAS dot product sums in another order)."""
    md = json.loads((DATA_DIR / BUILTIN_MODELS["vmaf_v0.6.1"][0]).read_text())["model_dict"]
    svr = parse_libsvm(md["model"])
    x = np.random.default_rng(2).uniform(-0.2, 1.2, (64, svr.dim))
    k = svr._kernel(x, svr.sv)
    got = svr.predict(x)
    for row, g in zip(k, got):
        total = 0.0
        for c, v in zip(svr.coef.tolist(), row.tolist()):
            total += c * v
        assert g == total - svr.rho


def test_sparse_support_vectors():
    text = ("svm_type nu_svr\nkernel_type rbf\ngamma 0.5\nnr_class 2\ntotal_sv 2\nrho 0.25\nSV\n"
            "1.5 1:0.5 3:1\n-2 2:0.25\n")
    svr = parse_libsvm(text)
    for x in ([0.1, 0.2, 0.3], [1.0, 0.0, -1.0], [0.0, 0.0, 0.0]):
        assert abs(svr.predict(np.array(x)) - svr_twin(text, x)) < 1e-12
    # a 2-feature input: the missing third index is 0, as in LIBSVM
    assert abs(svr.predict(np.array([0.1, 0.2])) - svr_twin(text, [0.1, 0.2, 0.0])) < 1e-12


def transform_twin(y, st):
    """libvmaf's transform() for one value: polynomial, knots, rectification."""
    out = y
    if any(st.get(p) is not None for p in ("p0", "p1", "p2")):
        out = (st.get("p0") or 0.0) + (st.get("p1") or 0.0) * y + (st.get("p2") or 0.0) * y * y
    knots = st.get("knots")
    if knots:
        xs, ys = zip(*knots)
        if out <= xs[0]:
            i = 0
        elif out >= xs[-1]:
            i = len(xs) - 2
        else:
            i = max(j for j in range(len(xs) - 1) if xs[j] <= out)
        (x0, y0), (x1, y1) = knots[i], knots[i + 1]
        out = y0 + (y1 - y0) * (out - x0) / (x1 - x0)
    if st.get("out_lte_in") == "true":
        out = min(out, y)
    if st.get("out_gte_in") == "true":
        out = max(out, y)
    return out


@pytest.mark.parametrize("st", [
    {"enabled": True, "p0": 1.7, "p1": 1.72, "p2": -0.007, "out_gte_in": "true"},
    {"enabled": True, "p0": 5.0, "p1": 1.0, "p2": None},
    {"enabled": True, "knots": [[0.0, 0.0], [40.0, 30.0], [60.0, 30.0], [100.0, 110.0]]},
    {"enabled": True, "p1": 2.0, "knots": [[10.0, 5.0], [90.0, 95.0]], "out_lte_in": "true"},
])
def test_score_transform_matches_twin(st):
    md = json.loads((DATA_DIR / "vmaf_v0.6.1.json").read_text())
    md["model_dict"]["score_transform"] = st
    md["model_dict"]["score_clip"] = None
    m = model_from_dict(md)
    t = m._parts[0].transform
    ys = np.linspace(-30, 140, 69)
    got = t.apply(ys)
    for y, g in zip(ys, got):
        assert abs(g - transform_twin(float(y), st)) < 1e-9, (y, g)


# ---------------------------------------------------------------- API

def test_builtin_models_all_load():
    names = [n for n, _ in builtin_models()]
    assert names == list(BUILTIN_MODELS)
    assert len(names) == 12
    for n, desc in builtin_models():
        m = load_model(n)
        assert m.name == n and desc and m.outputs[0] == "vmaf"
        assert all(isinstance(o_, dict) for _, o_ in m.extractors())


def test_extractor_mapping():
    m = load_model("vmaf_v0.6.1")
    # v0 models use no AIM output: ADM is asked to skip that work
    assert m.extractors() == [("adm", {"adm_skip_aim": True}), ("motion", {}), ("vif", {})]
    assert [(f.extractor, f.feature) for f in m.features] == [
        ("adm", "adm2"), ("motion", "motion2"), ("vif", "vif_scale0"), ("vif", "vif_scale1"),
        ("vif", "vif_scale2"), ("vif", "vif_scale3")]
    neg = load_model("vmaf_v0.6.1neg")
    assert ("adm", {"adm_enhn_gain_limit": 1.0, "adm_skip_aim": True}) in neg.extractors()
    assert ("vif", {"vif_enhn_gain_limit": 1.0}) in neg.extractors()
    v1 = dict(load_model("vmaf_v1.0.16_hfr_3d0h").extractors())
    assert set(v1) == {"cambi", "speed", "adm", "motion"}
    assert v1["motion"] == {"motion_max_val": 18.0, "motion_five_frame_window": True,
                            "motion_moving_average": True}
    assert v1["adm"]["adm_csf_mode"] == 2 and "adm_skip_aim" not in v1["adm"]
    b = load_model("vmaf_b_v0.6.3")
    assert len(b.extractors()) == 3 and len(b.features) == 6


def test_option_overrides():
    m = load_model("vmaf_v1.0.16_3d0h", enc_width=1280, enc_height=720, enc_bitdepth=8,
                   cambi_max_val=20.0, **{"cambi.topk": 0.5, "speed_max_val": 40.0})
    ex = dict(m.extractors())
    assert ex["cambi"] == {"cambi_high_res_speedup": 1080, "cambi_vis_lum_threshold": 0.06,
                           "cambi_max_val": 20.0, "enc_width": 1280, "enc_height": 720,
                           "enc_bitdepth": 8, "topk": 0.5}
    assert ex["speed"]["speed_max_val"] == 40.0
    # options of extractors the model does not use are ignored (as libvmaf does)
    assert load_model("vmaf_v0.6.1", enc_width=1280).extractors() == \
        load_model("vmaf_v0.6.1").extractors()
    with pytest.raises(ValueError, match="unknown model option"):
        load_model("vmaf_v0.6.1", widht=3)


def test_predict_with_engine_keys():
    m = load_model("vmaf_v1.0.16_3d0h")
    vals = {"cambi": 1.2, "speed_chroma_uv": 3.1, "adm3": 0.93, "motion3": 4.0}
    feats = {}
    for name, opts in m.extractors():
        k = engine_key(name, opts)
        feats[k] = {f.feature: vals[f.feature] for f in m.features if f.extractor == name}
        feats[k]["unrelated"] = 7.0
    got = m.predict(feats)
    assert got == pytest.approx(m.predict_features(vals), abs=1e-9)
    assert 0 <= got["vmaf"] <= 100
    # a missing feature gives None, not an exception
    first = next(iter(feats))
    assert m.predict({k: v for k, v in feats.items() if k != first}) == {"vmaf": None}
    m.output_prefix = "vmaf_v1"
    assert list(m.predict(feats)) == ["vmaf_v1"] and m.outputs == ("vmaf_v1",)


def test_predict_batch_and_names():
    m = load_model("vmaf_v0.6.1", name="hd")
    assert m.name == "hd"
    rng = np.random.default_rng(2)
    table = {"adm2": rng.uniform(0.5, 1, 9), "motion2": rng.uniform(0, 20, 9),
             **{f"vif_scale{i}": rng.uniform(0.2, 1, 9) for i in range(4)}}
    batch = m.predict_batch(table)["vmaf"]
    one = [m.predict_features({k: v[i] for k, v in table.items()})["vmaf"] for i in range(9)]
    assert np.allclose(batch, one, atol=1e-9, rtol=0)
    by_file_names = {f.json_name: table[f.feature] for f in m.features}
    assert np.allclose(m.predict_batch(by_file_names)["vmaf"], batch, atol=1e-9, rtol=0)
    with pytest.raises(KeyError, match="motion2"):
        m.predict_features({"adm2": 0.9})


def test_bootstrap_outputs():
    b = load_model("vmaf_b_v0.6.3", output_prefix="ci")
    assert b.outputs == ("ci", "ci_bagging", "ci_stddev", "ci_ci_low", "ci_ci_high")
    r = b.predict_features({"adm2": 0.95, "motion2": 3.0, "vif_scale0": 0.5,
                            "vif_scale1": 0.85, "vif_scale2": 0.9, "vif_scale3": 0.93})
    assert r["ci_ci_low"] < r["ci_bagging"] < r["ci_ci_high"] and r["ci_stddev"] > 0


def test_path_and_version_prefix(tmp_path):
    p = tmp_path / "my_model.json"
    p.write_text((DATA_DIR / "vmaf_v0.6.1.json").read_text())
    m = load_model(p)
    assert m.name == "my_model" and m.path == p
    assert load_model(f"path={p}").name == "my_model"
    assert load_model("version=vmaf_4k_v0.6.1").name == "vmaf_4k_v0.6.1"


# ---------------------------------------------------------------- errors

def _write(tmp_path, doc) -> Path:
    p = tmp_path / "m.json"
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


def _base():
    return json.loads((DATA_DIR / "vmaf_v0.6.1.json").read_text())


def test_unknown_name_lists_builtins():
    with pytest.raises(ValueError) as e:
        load_model("vmaf_v9")
    assert "vmaf_v0.6.1" in str(e.value) and "vmaf_v1.0.16_hfr_3d0h_2160" in str(e.value)
    with pytest.raises(ValueError, match="no such model file"):
        load_model("/nonexistent/model.json")


@pytest.mark.parametrize("mutate, match", [
    (lambda d: "{ not json", "not valid JSON"),
    (lambda d: [1, 2], "JSON object"),
    (lambda d: {"param_dict": {}}, "no 'model_dict'"),
    (lambda d: d["model_dict"].update(model_type="RANDOMFOREST"), "unsupported model_type"),
    (lambda d: d["model_dict"].update(norm_type="clip_0to1"), "training-time norm_type"),
    (lambda d: d["model_dict"].update(norm_type="zscore"), "unsupported norm_type"),
    (lambda d: d["model_dict"]["slopes"].pop() and None, "'slopes' must be a list of 7"),
    (lambda d: d["model_dict"].update(feature_names=[]), "feature_names"),
    (lambda d: d["model_dict"].update(feature_names=["VMAF_feature_foo_score"] * 6),
     "not provided by any vqa feature"),
    (lambda d: d["model_dict"].pop("model") and None, "LIBSVM model text"),
    (lambda d: d["model_dict"].update(model=d["model_dict"]["model"].replace(
        "kernel_type rbf", "kernel_type precomputed")), "unsupported libsvm kernel_type"),
    (lambda d: d["model_dict"].update(model=d["model_dict"]["model"].replace(
        "nu_svr", "c_svc")), "unsupported libsvm svm_type"),
    (lambda d: d["model_dict"].update(model=d["model_dict"]["model"].replace(
        "1:0.65734273", "1:abc")), "bad support vector"),
    (lambda d: d["model_dict"].update(model=d["model_dict"]["model"].replace(
        "total_sv 211", "total_sv 5")), "total_sv"),
    (lambda d: d["model_dict"].update(score_clip=[0]), "score_clip"),
    (lambda d: d["model_dict"].update(score_transform={"enabled": "yes"}), "enabled"),
    (lambda d: d["model_dict"].update(score_transform={"enabled": True,
                                                       "knots": [[1, 1], [0, 2]]}), "knots"),
    (lambda d: {"0": d}, "bootstrap model needs"),
])
def test_parse_errors(tmp_path, mutate, match):
    d = _base()
    r = mutate(d)
    doc = d if r is None else r
    with pytest.raises(ValueError, match=match):
        load_model(_write(tmp_path, doc))


def test_float_features_warn(tmp_path):
    d = json.loads((DATA_DIR / "vmaf_v0.6.1.json").read_text())
    d["model_dict"]["feature_names"] = [n.replace("VMAF_integer_feature", "VMAF_feature")
                                        for n in d["model_dict"]["feature_names"]]
    with pytest.warns(UserWarning, match="float features"):
        m = load_model(_write(tmp_path, d))
    # v0 models use no AIM output: ADM is asked to skip that work
    assert m.extractors() == [("adm", {"adm_skip_aim": True}), ("motion", {}), ("vif", {})]
