"""Frames computed in parallel (``Scorer(lanes=N)``, the session's lane pool):
the same records as one frame at a time, motion in frame order, extractors
that write files not copied per lane; the shim holding several pairs at once;
a whole compare with lanes equal to one without."""
import json
import os
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from oracle import VQA, encode, make_clip

from vqa_core import FrameFormat, Scorer
from vqa_core.models import load_model_spec


def _frames(n=10, w=224, h=176, seed=3):
    """Smooth random 4:2:0 frames that change from frame to frame (motion is
    not zero) and distorted copies (noise, a shift)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h + 8, w + 8 + 2 * n)).astype(float)
    for _ in range(3):  # a little blur: something for ADM and VIF to measure
        base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1) + np.roll(base, -1, 1)) / 4
    out = []
    for i in range(n):
        y = base[4:4 + h, 2 * i:2 * i + w]
        u = base[:h // 2, :w // 2]
        v = base[1:h // 2 + 1, 1:w // 2 + 1]
        ref = tuple(np.clip(p, 0, 255).astype(np.uint8) for p in (y, u, v))
        noise = rng.normal(0, 4 + i, y.shape)
        dis = (np.clip(y + noise, 0, 255).astype(np.uint8),) + ref[1:]
        out.append((ref, dis))
    return out, FrameFormat(w, h, "420", 8)


def _score_in_lanes(scorer, frames, scored, lanes, ordered_here=False):
    """What the session's consumer does: begin() in frame order, work() on a
    pool of `lanes` threads (each its lane), collect() in order.  A random
    pause before each work() makes later frames start (and often finish)
    their spatial features first.  ``ordered_here``: as the session does, the
    lanes leave the ordered extractors (work(..., ordered=False)) to this
    thread, which runs them (work_ordered) in frame order as each frame's
    lane returns."""
    ids = iter(range(lanes))
    local = threading.local()
    rnd = random.Random(7)
    pauses = [rnd.uniform(0, 0.02) for _ in frames]

    def init():
        local.lane = next(ids)

    def job(ticket, k):
        import time
        time.sleep(pauses[k])
        scorer.work(ticket, local.lane, *frames[k], ordered=not ordered_here)

    recs = []
    with ThreadPoolExecutor(lanes, initializer=init) as pool:
        tickets = [scorer.begin(i, None, scored(i)) for i in range(len(frames))]
        futs = [pool.submit(job, t, i) for i, t in enumerate(tickets)]
        for k, f in enumerate(futs):
            f.result()
            if ordered_here:
                scorer.work_ordered(tickets[k], *frames[k])
            recs += scorer.collect()
    return recs + scorer.finish()


@pytest.mark.parametrize("ordered_here", [False, True])
@pytest.mark.parametrize("every", [1, 3])
def test_lanes_give_the_records_of_one_frame_at_a_time(every, ordered_here):
    """Three lanes, frames finishing out of order, --subsample's unscored
    frames (motion only), the ordered extractors in the lanes or on the
    caller's thread: the same records, in the same order, as push()."""
    frames, fmt = _frames()
    models = [load_model_spec("vmaf_v0.6.1"), load_model_spec("vmaf_v1.0.16_3d0h")]
    metrics = ["psnr", "ssim", "ms_ssim", "cambi"]
    scored = (lambda i: i % every == 0)
    one = Scorer(fmt, metrics, models, features=True)
    want = []
    for i, (ref, dis) in enumerate(frames):
        want += one.push(i, None, ref, dis, score=scored(i))
    want += one.finish()
    par = Scorer(fmt, metrics, models, features=True, lanes=3)
    assert par.lanes == 3
    got = _score_in_lanes(par, frames, scored, 3, ordered_here)
    assert [r["frame"] for r in got] == [i for i in range(len(frames)) if scored(i)]
    assert got == want  # bit for bit: same kernels, same order of sums
    assert any(r["motion2"] > 0 for r in got)
    assert par.summary() == one.summary()


@pytest.mark.parametrize("ordered_here", [False, True])
def test_lanes_share_the_ordered_extractors(tmp_path, ordered_here):
    """Motion and CAMBI writing heatmaps are one instance for all lanes (state
    and files); the others are one instance per lane.  The heatmap files are
    those of a one-lane run, also when the caller runs the ordered ones."""
    frames, fmt = _frames(n=6)

    class HeatModel:  # just enough of a model: CAMBI with its heatmap files
        name = output_prefix = "heat"

        def __init__(self, path):
            self.path = str(path)

        def extractors(self):
            return [("cambi", {"heatmaps_path": self.path}), ("motion", {})]

        def predict(self, feats):
            return {}

    outs = {}
    for lanes in (1, 2):
        d = tmp_path / f"heat{lanes}"
        d.mkdir()
        s = Scorer(fmt, ["psnr"], [HeatModel(d)], lanes=lanes)
        if lanes == 2:
            a, b = s._lanes
            kinds = {k[0]: (a[k] is b[k]) for k in a}
            assert kinds == {"psnr": False, "cambi": True, "motion": True}
        _score_in_lanes(s, frames, lambda i: True, lanes, ordered_here)
        for ext in s.extractors.values():
            if hasattr(ext, "close"):
                ext.close()
        outs[lanes] = {p.name: p.read_bytes() for p in sorted(d.iterdir())}
    assert outs[1] and outs[2] == outs[1]


def test_a_failing_lane_stops_the_others():
    """An error in one lane reaches the caller of that frame's work(); a lane
    waiting for its turn at the temporal features gives up instead of
    waiting forever."""
    frames, fmt = _frames(n=4)
    s = Scorer(fmt, ["psnr"], [load_model_spec("vmaf_v0.6.1")], lanes=2)
    t0 = s.begin(0, None)
    t1 = s.begin(1, None)
    ref, dis = frames[0]
    with pytest.raises(ValueError):
        s.work(t0, 0, ref, (dis[0][:10],) + dis[1:])  # a luma plane of the wrong size
    with pytest.raises(RuntimeError, match="another frame failed"):
        s.work(t1, 1, *frames[1])
    # push() checks the pair before taking a frame number: a bad pair leaves
    # the scorer as it was
    s = Scorer(fmt, ["psnr"], [load_model_spec("vmaf_v0.6.1")])
    with pytest.raises(ValueError):
        s.push(0, None, ref, (dis[0][:10],) + dis[1:])
    recs = [r for i, (a, b) in enumerate(frames) for r in s.push(i, None, a, b)] + s.finish()
    assert [r["frame"] for r in recs] == [0, 1, 2, 3]


def test_stream_holds_several_pairs(tmp_path):
    """PairStream.acquire() keeps pairs valid until release(), oldest first;
    the reader fills only freed slots, so a held pair never changes."""
    from vqa_filter.stream import PairStream
    w, h, n = 8, 4, 6
    r, wfd = os.pipe()
    frame = lambda k: bytes([k]) * (w * 2 * h * 3 // 2)  # noqa: E731  (a 8x8 stacked 4:2:0 frame)

    def writer():
        with os.fdopen(wfd, "wb") as f:
            f.write(f"YUV4MPEG2 W{w} H{2 * h} F25:1 Ip A1:1 C420jpeg\n".encode())
            for k in range(n):
                f.write(b"FRAME\n" + frame(k))
    t = threading.Thread(target=writer)
    t.start()
    s = PairStream(r, (w, h), nslots=3)
    held = [s.acquire(1000) for _ in range(3)]
    assert [p.index for p in held] == [0, 1, 2]
    assert s.acquire(200) is None  # every slot held: nothing more is read
    s.release()  # frame 0
    p3 = s.acquire(1000)
    assert p3.index == 3 and int(p3.ref[0][0, 0]) == 3
    assert [int(p.dis[0][0, 0]) for p in held[1:]] == [1, 2]  # untouched
    s.release_all()
    p4 = s.next(1000)
    p5 = s.next(1000)  # next() releases the pair it returned before
    assert (p4.index, p5.index) == (4, 5) and int(p5.ref[2][0, 0]) == 5
    with pytest.raises(StopIteration):
        s.next(1000)
    st = s.stats()
    assert st.frames_consumed == 6 and st.frames_read == 6  # the last next() released 5
    s.close()
    t.join()
    os.close(r)


def test_stream_reads_a_trickle_into_whole_frames():
    """ffmpeg writes a pipe 32 KiB at a time; the reader waits for a batch
    before reading (a 1 MiB pipe), and still gets every byte in order,
    across writer pauses longer than its waits, up to the end of the
    stream; closing it while it waits returns."""
    import fcntl
    from vqa_filter.stream import PairStream
    w, h, n = 640, 360, 3
    size = w * 2 * h * 3 // 2
    r, wfd = os.pipe()
    try:
        fcntl.fcntl(wfd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pytest.skip("cannot grow a pipe here")
    frames = [((np.arange(size) * 7 + k) % 251).astype(np.uint8).tobytes() for k in range(n)]

    def writer():
        with os.fdopen(wfd, "wb", buffering=0) as f:
            f.write(f"YUV4MPEG2 W{w} H{2 * h} F25:1 Ip A1:1 C420jpeg\n".encode())
            for k, fr in enumerate(frames):
                f.write(b"FRAME\n")
                for i, a in enumerate(range(0, size, 32768)):
                    f.write(fr[a:a + 32768])
                    if i % 5 == 4:
                        time.sleep(0.001 if i % 3 else 0.02)
    t = threading.Thread(target=writer)
    t.start()
    s = PairStream(r, (w, h), nslots=2)
    got = []
    for k in range(n):
        p = s.next(5000)
        # the stacked frame's planes: the distorted rows, then the reference's
        got.append(b"".join(np.ascontiguousarray(d).tobytes() + np.ascontiguousarray(f).tobytes()
                            for d, f in zip(p.dis, p.ref)))
    assert got == frames
    with pytest.raises(StopIteration):
        s.next(5000)
    s.close()
    t.join()
    os.close(r)
    # a reader waiting for a batch that never comes is closed promptly
    r, wfd = os.pipe()
    fcntl.fcntl(wfd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    os.write(wfd, f"YUV4MPEG2 W{w} H{2 * h} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + b"x" * 1000)
    s = PairStream(r, (w, h), nslots=2)
    assert s.acquire(100) is None
    t0 = time.monotonic()
    s.close()
    assert time.monotonic() - t0 < 5
    os.close(wfd)
    os.close(r)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    t = tmp_path_factory.mktemp("lanes")
    ref = make_clip(t / "ref.y4m", size="352x288", duration=1.2)
    dis = encode(ref, t / "dis.mp4", ["-c:v", "libx264", "-crf", "33"])
    return t, ref, dis


def test_compare_in_lanes_equals_one_lane(clip):
    """A whole compare: frames in parallel by default (one per kernel
    thread), the same log as ``VQA_LANES=1``; ``--threads 1`` is one lane."""
    t, ref, dis = clip
    runs = {}
    for name, env, extra in (("default", {}, []), ("one", {"VQA_LANES": "1"}, []),
                             ("t1", {}, ["--threads", "1"])):
        log, rep = t / f"{name}.jsonl", t / f"{name}.json"
        r = subprocess.run([*VQA, "compare", "--features", "--metrics", "vmaf,psnr,ssim", *extra,
                            "--log", str(log), "--report", str(rep), str(ref), str(dis)],
                           capture_output=True, text=True, timeout=300,
                           env={**os.environ, **env})
        assert r.returncode == 0, r.stderr
        runs[name] = (log.read_text(), json.loads(rep.read_text()))
    default, one, t1 = runs["default"][1], runs["one"][1], runs["t1"][1]
    assert one["lanes"] == 1 and t1["lanes"] == 1 and t1["threads"] == 1
    threads = default["threads"]
    assert default["lanes"] == threads
    assert default["frames"] == one["frames"] == 30
    assert runs["default"][0] == runs["one"][0]


def _buffer_bytes(obj, seen=None) -> int:
    """Bytes of the numpy buffers an object holds (attributes, lists, dicts;
    views counted once, with their base)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        if id(base) in seen and base is not obj:
            return 0
        seen.add(id(base))
        return base.nbytes
    if isinstance(obj, (list, tuple, set)):
        return sum(_buffer_bytes(x, seen) for x in obj)
    if isinstance(obj, dict):
        return sum(_buffer_bytes(x, seen) for x in obj.values())
    if hasattr(obj, "__dict__") and type(obj).__module__.startswith("vqa_core"):
        return _buffer_bytes(vars(obj), seen)
    return 0


def test_file_ring_slots_keep_to_their_budget():
    """A file's ring: two slots a lane and two read ahead at least, more up to
    FILE_NSLOTS while they fit in FILE_RING_BUDGET: 8 at 1080p and at 4K
    8-bit, 6 at 4K 10-bit on two lanes (50 MB pairs: 400 MB in 8), what the
    lanes need beyond that; the session gives the ring that many."""
    from vqa_filter.pixfmt import frame_bytes
    from vqa_filter.session import FILE_NSLOTS, FILE_RING_BUDGET, file_slots

    def pair(w, h, depth):  # a stacked 4:2:0 pair
        return frame_bytes(FrameFormat(w, 2 * h, "420", depth))
    assert file_slots(2, pair(1920, 1080, 8)) == FILE_NSLOTS == 8
    assert file_slots(2, pair(3840, 2160, 8)) == 8
    assert file_slots(2, pair(3840, 2160, 10)) == 6
    assert file_slots(1, pair(3840, 2160, 10)) == 5
    assert file_slots(1, pair(3840, 2160, 10)) * pair(3840, 2160, 10) <= FILE_RING_BUDGET
    assert file_slots(3, pair(3840, 2160, 10)) == 8
    assert file_slots(9, pair(1920, 1080, 8)) == 20
    assert file_slots(2, pair(7680, 4320, 10)) == 6
    assert file_slots(2, 0) == 8  # the size unknown


def test_lane_count_keeps_to_the_memory_budget():
    """One lane per thread, those beyond the second within LANE_MEMORY_BUDGET:
    4K on 16 cores gets 3, 1080p 9, 8K 2 (a kernel call runs on one thread:
    one lane would leave the other cores idle); and the estimate per pixel holds: an
    extra lane's kernel buffers for the 4K models, plus its ring slot, stay
    under LANE_BYTES_PER_PIXEL."""
    from vqa_filter.session import LANE_BYTES_PER_PIXEL, _lanes_for_memory
    assert _lanes_for_memory(2, 3840 * 2160) == 2
    assert _lanes_for_memory(16, 3840 * 2160) == 3
    assert _lanes_for_memory(16, 1920 * 1080) == 9
    assert _lanes_for_memory(16, 7680 * 4320) == 2
    assert _lanes_for_memory(1, 640 * 480) == 1
    px = 3840 * 2160
    fmt = FrameFormat(3840, 2160, "420", 10)
    for name in ("vmaf_4k_v0.6.1", "vmaf_v1.0.16_1d5h_2160"):
        s = Scorer(fmt, ["psnr"], [load_model_spec(name)], lanes=2)
        lane = [e for k, e in s._lanes[1].items() if k not in s._ordered]
        per_px = _buffer_bytes(lane) / px + 6  # + a 10-bit stacked ring slot
        assert 1 < per_px < LANE_BYTES_PER_PIXEL, (name, per_px)


def test_an_interrupt_completes_the_frames_whose_lanes_finished():
    """After Ctrl-C the consumer runs the ordered extractors of the frames
    in flight whose lanes had finished, in order, up to the first that had
    not (or failed): their records are written; nothing after it is."""
    import types
    from concurrent.futures import Future
    from vqa_filter.session import _Consumer
    frames, fmt = _frames(n=5)
    s = Scorer(fmt, ["psnr"], [load_model_spec("vmaf_v0.6.1")], lanes=2)
    tickets = [s.begin(i, None) for i in range(5)]
    futs = [Future() for _ in frames]
    for k in (0, 1, 3, 4):  # frame 2's lane never finished
        s.work(tickets[k], k % 2, *frames[k], ordered=False)
        futs[k].set_result(None)
    inflight = [(types.SimpleNamespace(ref=r, dis=d), f, True, t)
                for (r, d), f, t in zip(frames, futs, tickets)]
    _Consumer._complete(types.SimpleNamespace(scorer=s), inflight)
    assert s._next_temporal == 2  # frames 0 and 1, not 3 and 4
    one = Scorer(fmt, ["psnr"], [load_model_spec("vmaf_v0.6.1")])
    want = [r for i in range(2) for r in one.push(i, None, *frames[i])]
    assert s.collect() == want and want  # frame 0 (motion2 needs frame 1)
    failed = Future()
    failed.set_exception(ValueError("lane"))
    s2 = Scorer(fmt, ["psnr"], [load_model_spec("vmaf_v0.6.1")], lanes=2)
    t = s2.begin(0, None)
    _Consumer._complete(types.SimpleNamespace(scorer=s2), [(inflight[0][0], failed, True, t)])
    assert s2._next_temporal == 0
