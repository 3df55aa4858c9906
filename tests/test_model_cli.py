"""--model specs: parsing, record keys of several models, errors, vqa models."""
import json

import pytest

from oracle import encode, make_clip, run_vqa
from vqa_core.models import builtin_models, load_model_spec, parse_model_spec


vqa = run_vqa


def test_parse_model_spec():
    assert parse_model_spec("vmaf_v0.6.1") == ("vmaf_v0.6.1", {})
    assert parse_model_spec("vmaf_v1.0.16_3d0h:cambi.enc_width=1280:enc_bitdepth=8:name=v1") == (
        "vmaf_v1.0.16_3d0h", {"cambi.enc_width": 1280, "enc_bitdepth": 8, "name": "v1"})
    assert parse_model_spec("/m:odels/x.json:disable_clip=true") == (
        "/m:odels/x.json", {"disable_clip": True})
    for bad in ("", ":name=x", "vmaf_v0.6.1:name=x:oops"):
        with pytest.raises(ValueError):
            parse_model_spec(bad)


def test_load_model_spec_routes_options():
    m = load_model_spec("vmaf_v1.0.16_3d0h:cambi.enc_width=1280:cambi.enc_height=720:name=v1")
    assert m.outputs == ("v1",)
    cambi = dict(m.extractors())["cambi"]
    assert cambi["enc_width"] == 1280 and cambi["enc_height"] == 720
    with pytest.raises(ValueError):
        load_model_spec("vmaf_v0.6.1:disable_clip=maybe")


def test_models_command_lists_every_builtin_model():
    r = vqa("models")
    assert r.returncode == 0
    for name, _ in builtin_models():
        assert name in r.stdout
    assert len(builtin_models()) == 12


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    t = tmp_path_factory.mktemp("mc")
    ref = make_clip(t / "ref.y4m", size="320x240", duration=0.16)
    return t, ref, encode(ref, t / "d.mp4", ["-c:v", "libx264", "-crf", "35"])


def test_several_models_one_pass(pair):
    t, ref, dis = pair
    log = t / "l.jsonl"
    r = vqa("compare", "-q", "--model", "vmaf_v0.6.1", "--model", "vmaf_4k_v0.6.1",
            "--model", "vmaf_v0.6.1:name=phone:enable_transform=true", "--metrics", "psnr",
            "--log", log, ref, dis)
    assert r.returncode == 0, r.stderr
    rec = json.loads(log.read_text().splitlines()[0])
    assert {"vmaf_v0.6.1", "vmaf_4k_v0.6.1", "phone", "psnr_y"} <= set(rec)
    assert "vmaf" not in rec
    assert rec["phone"] >= rec["vmaf_v0.6.1"]  # the phone transform only raises scores


def test_default_is_vmaf_v061_and_errors_are_one_line(pair, tmp_path):
    t, ref, dis = pair
    log = t / "d.jsonl"
    r = vqa("compare", "-q", "--log", log, ref, dis)
    assert r.returncode == 0, r.stderr
    assert set(json.loads(log.read_text().splitlines()[0])) == {"frame", "pts", "vmaf"}
    for args, text in ((("--model", "nosuch"), "unknown model"),
                       (("--model", tmp_path / "none.json"), "no such model file"),
                       (("--model", "vmaf_v0.6.1", "--model", "vmaf_v0.6.1"), "both write"),
                       (("--bit-depth", "11"), "--bit-depth")):
        r = vqa("compare", *args, ref, dis)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert text in r.stderr and len(r.stderr.strip().splitlines()) == 1
