"""The ffmpeg commands vqa runs.

Both frames of a pair travel in one y4m frame: the distorted frame stacked on
top of the reference (``xstack``, built on ffmpeg's framesync, pairs them by
timestamp, so they cannot drift apart; the reference starts at an even row,
see :func:`ref_row`).  Frames are first converted to the reference's planar
format at its own bit depth.  Each pair stream goes to its own pipe, and the timestamp of
every pair to a second pipe through ``-stats_enc_pre``.

``compare`` commands are built with ffmpeg-python.  Inline commands are the
user's argv followed by vqa's loopback decoders (``-dec``), pairing graphs and
pipe outputs; ffmpeg-python cannot express loopback decoders (``[dec:N]``)
nor an argv it did not build, so those parts are plain strings.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import ffmpeg as ffmpeg_python
from vqa_core import FrameFormat

from .argv import Command, OutputFile, graph_outputs, spec_matches
from .errors import ProbeError, UsageError
from .ffmpeg import Ffmpeg, MediaInfo, StreamInfo, probe_all, require_video

from .pixfmt import chroma_and_depth, frame_bytes, pair_format_for, parse_y4m_header

SCALE_ALGOS = ("bicubic", "bilinear", "lanczos", "spline", "neighbor", "area", "gauss",
               "sinc", "fast_bilinear", "bicublin", "experimental")

# formats the y4m muxer writes, for graphs whose input format is not known
Y4M_FORMATS = ("yuv420p|yuv422p|yuv444p|gray|yuv420p10le|yuv422p10le|yuv444p10le|"
               "yuv420p12le|yuv422p12le|yuv444p12le|yuv420p16le|yuv422p16le|yuv444p16le|"
               "gray10le|gray12le|gray16le")


@dataclass
class ScoredStream:
    label: str
    output_url: Optional[str]
    stream_index: Optional[int]
    size: Optional[Tuple[int, int]]  # true frame size, None = half the stacked size
    #: the pair format whose luma alone ffmpeg sends (see drops_chroma; set
    #: by the session when the run's metrics read no chroma)
    luma_of: Optional[str] = None


def drops_chroma(pair_fmt: Optional[str]) -> bool:
    """Whether pairs in ``pair_fmt`` can travel as their luma planes alone
    (``extractplanes=y``; y4m carries gray at these depths), for runs whose
    metrics read no chroma: a third less for ffmpeg to stack, write and
    vqa to read (4:2:0; ffmpeg's CPU for a 1080p pair: 3.16 vs 3.53 ms)."""
    if not pair_fmt:
        return False
    chroma, depth = chroma_and_depth(pair_fmt)
    return chroma != "400" and depth in (8, 10, 12, 16)


def ref_row(h: int) -> int:
    """Row at which the reference frame starts in the stacked pair frame: the
    distorted frame's height rounded up to even, so that with 4:2:0 chroma
    both frames' chroma rows stay whole (``vstack`` of two odd-height 4:2:0
    frames would lose one; ffmpeg's ``pad`` drops the last chroma column of an
    odd-width frame).  ``xstack`` puts the reference there; a gap row, when
    there is one, is black and never read."""
    return h + (h & 1)


def _stack_layout(h: int) -> str:
    return f"0_0|0_{ref_row(h)}"


def _stack_fill(h: int) -> dict:
    """xstack's options for the gap row: ``fill`` paints the whole output
    frame before the inputs are copied in, a frame-sized memset per pair
    (~0.25 ms of ffmpeg's CPU a 1080p pair), so it is asked for only when
    there is a gap row to paint (an odd height)."""
    return {"fill": "black"} if ref_row(h) != h else {}


def _pipe_output_args(frames_fd: int, stats_fd: int) -> List[str]:
    return ["-fps_mode", "passthrough", "-f", "yuv4mpegpipe", "-strict", "-1",
            "-stats_enc_pre", f"pipe:{stats_fd}", "-stats_enc_pre_fmt", "{n} {t}",
            f"pipe:{frames_fd}"]


# ================================================================= compare

#: packets ffmpeg queues for each input of a compare's pair before decoding,
#: and pairs before writing them to the pipe (its default: 8 each), when a
#: frame takes COMPARE_QUEUE_ABOVE bytes or more.  vqa's ring is the
#: read-ahead; ffmpeg's queues on top of it only hold memory: at 4K 10-bit
#: (25 MB frames, 50 MB pairs) its peak reached 0.75-1.03 GB in 48-frame
#: compares, 0.58-0.74 GB with 2 (4 runs each, 3.32 against 3.26 s median).
#: Smaller frames keep ffmpeg's default (at 1080p, 8 alternating runs each:
#: vmaf_v1.0.16_3d0h 1.612 against 1.617 s median with 2, vmaf_v0.6.1 2.042
#: against 2.086 s).
COMPARE_QUEUE = 2
COMPARE_QUEUE_ABOVE = 16 << 20

@dataclass
class CompareBuild:
    ff: Ffmpeg
    reference: str
    distorted: str
    ref_info: StreamInfo
    dis_info: StreamInfo
    pair_fmt: str
    scale_algo: str
    tmp: str
    streams: List[ScoredStream]
    notes: List[str] = field(default_factory=list)
    uses_stdout: bool = False
    #: frames the run should score, from the probes (None: unknown); for the ETA
    expected_frames: Optional[int] = None
    #: frame counts known without demuxing again (y4m: from the file size)
    _known_counts: Dict[str, int] = field(default_factory=dict)
    #: the distorted frames go through ``scale`` to the reference's size;
    #: not when they cannot be of another size and need no conversion (a y4m
    #: file of that size, in the pair's format): an identity scale still
    #: costs ffmpeg ~0.4 ms of CPU a 1080p frame
    scale_dis: bool = True

    @property
    def stream_formats(self) -> List[str]:
        """The pair format of each scored stream."""
        return [self.pair_fmt]

    @property
    def inputs_description(self) -> dict:
        return {
            "reference": {"path": self.reference, "size": f"{self.ref_info.width}x{self.ref_info.height}",
                          "pix_fmt": self.ref_info.pix_fmt, "codec": self.ref_info.codec},
            "distorted": {"path": self.distorted, "size": f"{self.dis_info.width}x{self.dis_info.height}",
                          "pix_fmt": self.dis_info.pix_fmt, "codec": self.dis_info.codec},
            "compared_as": self.pair_fmt,
            "scale_algo": self.scale_algo,
        }

    def _count_file(self, which: str) -> str:
        return os.path.join(self.tmp, f"count_{which}.txt")

    @property
    def queue_options(self) -> Dict[str, int]:
        """ffmpeg's thread queue size for the pair's inputs and output: short
        for big frames (COMPARE_QUEUE), ffmpeg's default otherwise.  Big: a
        decoded input frame or a frame of the pair (the larger) of
        COMPARE_QUEUE_ABOVE bytes or more (a luma-only pair of 4K 10-bit
        frames takes 16.6 MB, its inputs' frames 25 MB)."""
        sizes = []
        for info, fmt in ((self.ref_info, self.ref_info.pix_fmt), (self.dis_info, self.dis_info.pix_fmt),
                          (self.ref_info, self.pair_fmt)):
            if info.width and info.height and fmt:
                chroma, depth = chroma_and_depth(fmt)
                sizes.append(frame_bytes(FrameFormat(info.width, info.height, chroma, depth)))
        big = max(sizes, default=0) >= COMPARE_QUEUE_ABOVE
        return {"thread_queue_size": COMPARE_QUEUE} if big else {}

    def command(self, progress_fd: int, pipes: Sequence[Tuple[int, int]]) -> List[str]:
        (frames_fd, stats_fd), = pipes
        w, h = self.ref_info.width, self.ref_info.height
        queue = self.queue_options
        ref_in = ffmpeg_python.input(self.reference, **queue)
        dis_url = self.distorted
        if dis_url == self.reference:
            # ffmpeg-python would merge two identical inputs into one node:
            # name the same file another way
            dis_url = _other_name(dis_url) or dis_url + ("&" if "?" in dis_url else "?")
        dis_in = ffmpeg_python.input(dis_url, **queue)
        ref = ref_in["v:0"].filter("setpts", "PTS-STARTPTS")
        dis = dis_in["v:0"].filter("setpts", "PTS-STARTPTS")
        if self.scale_dis:
            dis = dis.filter("scale", w, h, flags=self.scale_algo)
        d = dis.filter("format", self.pair_fmt)
        r = ref.filter("format", self.pair_fmt)
        if self.streams[0].luma_of:
            d, r = d.filter("extractplanes", "y"), r.filter("extractplanes", "y")
        pair = ffmpeg_python.filter([d, r], "xstack", inputs=2, layout=_stack_layout(h),
                                    shortest=1, **_stack_fill(h))
        out_pair = pair.output(f"pipe:{frames_fd}", format="yuv4mpegpipe", strict="-1",
                               **queue,
                               fps_mode="passthrough", stats_enc_pre=f"pipe:{stats_fd}",
                               stats_enc_pre_fmt="{n} {t}")
        # frame counters, to tell what was left out: each file demuxed once more
        # and its video packets counted through a stream copy (no decoding).
        # (Counting decoded frames off a split of the scored path made ffmpeg
        # queue every frame the pair path had not taken yet: memory grew with
        # the clip.)  Local files only: a URL is not read twice.
        self._same = self.distorted == self.reference
        outs = [out_pair]
        self._known_counts.clear()
        for which, url in (("ref", self.reference), ("dis", self.distorted)):
            alt = _other_name(url)
            if alt is None or (which == "dis" and self._same):
                continue
            layout = _y4m_layout(url)
            if layout is not None:  # raw frames of a fixed size: counted from the file's size
                self._known_counts[which] = layout[0]
                continue
            # framecrc: a line per packet (stream copies write no -stats_mux_pre)
            outs.append(ffmpeg_python.input(alt)["v:0"].output(
                self._count_file(which), format="framecrc", c="copy"))
        merged = ffmpeg_python.merge_outputs(*outs).global_args(
            "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+warning",
            "-progress", f"pipe:{progress_fd}")
        return merged.compile(cmd=self.ff.path)

    def _count(self, which: str) -> Optional[int]:
        known = self._known_counts.get(which)
        if known is not None:
            return known
        try:
            with open(self._count_file(which)) as f:
                return sum(1 for ln in f if ln.strip() and not ln.startswith("#"))
        except OSError:
            return None

    def truncated_y4m(self) -> Optional[Tuple[str, str]]:
        """(which file, why) when a y4m input ends in the middle of a frame:
        ffmpeg drops such a frame without a word."""
        for what, path in (("reference", self.reference), ("distorted", self.distorted)):
            why = _y4m_tail(path)
            if why:
                return f"{what} {path}", why
        return None

    def finish_notes(self) -> List[str]:
        nr = self._count("ref")
        nd = nr if getattr(self, "_same", False) else self._count("dis")
        out = []
        if nr is not None and nd is not None and nr != nd:
            longer, extra = ("reference", nr - nd) if nr > nd else ("distorted", nd - nr)
            path = self.reference if nr > nd else self.distorted
            out.append(f"warning: frame counts differ (reference {nr}, distorted {nd}): scored the "
                       f"{min(nr, nd)}-frame overlap; {extra} frame{'s' if extra != 1 else ''} at the end "
                       f"of the {longer} ({path}) left out")
        return out


def _y4m_size(path: str) -> Optional[Tuple[int, int]]:
    """(width, height) of a local .y4m file, from its header; None for
    anything else."""
    if not path.lower().endswith(".y4m") or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            return parse_y4m_header(f.readline(4096))[:2]
    except (OSError, ValueError):
        return None


def _y4m_layout(path: str) -> Optional[Tuple[int, Optional[str]]]:
    """(whole frames, why it is cut short or None) of a local .y4m file whose
    frames carry no parameters ("FRAME\\n", as ffmpeg writes them: whole
    frames then fill the file exactly); None when that cannot be told."""
    if not path.lower().endswith(".y4m") or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            header = f.readline(4096)
            w, h, chroma, depth, _ = parse_y4m_header(header)
            fb = frame_bytes(FrameFormat(w, h, chroma, depth)) + 6
            size = os.fstat(f.fileno()).st_size - len(header)
            f.seek(len(header))
            if f.read(6) != b"FRAME\n":
                return None  # frame parameters: sizes vary, cannot tell
    except (OSError, ValueError):
        return None
    extra = size % fb
    why = f"its last frame has {extra - 6 if extra > 6 else 0} of {fb - 6} bytes" if extra else None
    return size // fb, why


def _y4m_tail(path: str) -> Optional[str]:
    """Why a local .y4m file is cut short, or None."""
    layout = _y4m_layout(path)
    return layout[1] if layout else None


def _other_name(url: str) -> Optional[str]:
    """Another name for a local file (``file:/abs/path``), so that ffmpeg-python
    keeps a second input of it apart; None for URLs and missing paths."""
    if not os.path.exists(url):
        return None
    return "file:" + os.path.abspath(url)


def build_compare(ff: Ffmpeg, reference: str, distorted: str, opts, tmp: str) -> CompareBuild:
    if opts.scale_algo not in SCALE_ALGOS:
        raise UsageError(f"unknown --scale-algo {opts.scale_algo!r}; one of: {', '.join(SCALE_ALGOS)}")
    ref_media, dis_media = probe_all(ff, [(reference, (), "reference"), (distorted, (), "distorted")])
    ref_info = require_video(ref_media, "reference")
    dis_info = require_video(dis_media, "distorted")
    if not ref_info.width or not ref_info.height:
        raise ProbeError(f"cannot tell the frame size of reference {reference}")
    pair_fmt = pair_format_for(ref_info.pix_fmt or "yuv420p", opts.bitdepth)
    notes = []
    if (dis_info.width, dis_info.height) != (ref_info.width, ref_info.height) and dis_info.width:
        notes.append(f"distorted {dis_info.width}x{dis_info.height} is scaled to the reference's "
                     f"{ref_info.width}x{ref_info.height} ({opts.scale_algo})")
    size = (ref_info.width, ref_info.height)
    s = ScoredStream(label=os.path.basename(distorted), output_url=None, stream_index=None, size=size)
    b = CompareBuild(ff, reference, distorted, ref_info, dis_info, pair_fmt, opts.scale_algo, tmp,
                     [s], notes)
    # a y4m file's frames all have the size of its header (other inputs may
    # change size mid-stream: scaled, to the reference's size, in any case);
    # one in another pixel format is converted by the scale, with --scale-algo
    b.scale_dis = _y4m_size(distorted) != size or dis_info.pix_fmt != pair_fmt
    counts = [_frames_of(m, i) for m, i in ((ref_media, ref_info), (dis_media, dis_info))]
    if all(counts):
        b.expected_frames = min(counts)
    return b


def _frames_of(media, info: StreamInfo) -> Optional[int]:
    """A file's frame count estimated from its duration and frame rate."""
    if media.duration and info.fps:
        return max(1, int(round(media.duration * info.fps)))
    return None


# ================================================================= inline

@dataclass
class _OutStream:
    kind: str
    source: Optional[str]  # input stream spec "I:abs" / "I:v:0" or None
    graph_label: Optional[str] = None
    info: Optional[StreamInfo] = None


@dataclass
class InlinePlan:
    output: OutputFile
    stream_index: int
    ref_label: str  # input stream spec for the reference, e.g. "0:0" or "0:v:0"
    ref_info: Optional[StreamInfo]


@dataclass
class InlineBuild:
    ff: Ffmpeg
    cmd: Command
    plans: List[InlinePlan]
    scale_algo: str
    streams: List[ScoredStream]
    notes: List[str]
    uses_stdout: bool
    bitdepth: Optional[int] = None

    @property
    def inputs_description(self) -> dict:
        return {
            "command": ["ffmpeg", *self.cmd.argv],
            "inputs": [i.url for i in self.cmd.inputs],
            "scored": [{"output": p.output.url, "stream": p.stream_index, "reference": p.ref_label,
                        "reference_size": (f"{p.ref_info.width}x{p.ref_info.height}"
                                           if p.ref_info and p.ref_info.width else None),
                        "reference_pix_fmt": p.ref_info.pix_fmt if p.ref_info else None}
                       for p in self.plans],
            "scale_algo": self.scale_algo,
        }

    def finish_notes(self) -> List[str]:
        return []

    def _pair_fmt(self, plan: InlinePlan) -> Optional[str]:
        info = plan.ref_info
        if info and info.width and info.height and info.pix_fmt:
            return pair_format_for(info.pix_fmt, self.bitdepth)
        return None

    @property
    def stream_formats(self) -> List[Optional[str]]:
        """The pair format of each scored stream (None: not known before ffmpeg runs)."""
        return [self._pair_fmt(p) for p in self.plans]

    @property
    def pair_fmt(self) -> Optional[str]:
        """The first scored stream's pair format (None: not known before ffmpeg runs)."""
        return next((f for f in map(self._pair_fmt, self.plans) if f), None)

    def command(self, progress_fd: int, pipes: Sequence[Tuple[int, int]]) -> List[str]:
        head = [self.ff.path, "-nostats", "-progress", f"pipe:{progress_fd}"]
        tail: List[str] = []
        for k, (plan, (frames_fd, stats_fd)) in enumerate(zip(self.plans, pipes)):
            tail += ["-dec", f"{plan.output.index}:{plan.stream_index}"]
            tail += ["-filter_complex", self._graph(k, plan)]
            tail += ["-map", f"[vqa_p{k}]", *_pipe_output_args(frames_fd, stats_fd)]
        return head + list(self.cmd.argv) + tail

    def _graph(self, k: int, plan: InlinePlan) -> str:
        algo = self.scale_algo
        fmt = self._pair_fmt(plan)
        if fmt:
            w, h = plan.ref_info.width, plan.ref_info.height
            if self.streams[k].luma_of:
                fmt += ",extractplanes=y"
            return (f"[{plan.ref_label}]format={fmt}[vqa_r{k}];"
                    f"[dec:{k}]scale={w}:{h}:flags={algo},format={fmt}[vqa_d{k}];"
                    f"[vqa_d{k}][vqa_r{k}]xstack=inputs=2:layout={_stack_layout(h)}:"
                    f"{'fill=black:' if _stack_fill(h) else ''}shortest=1[vqa_p{k}]")
        # size and format unknown (an input we could not probe): scale to the
        # reference through scale's reference input, let ffmpeg pick a format
        return (f"[{plan.ref_label}]split=2[vqa_r{k}][vqa_rr{k}];"
                f"[dec:{k}][vqa_rr{k}]scale=rw:rh:flags={algo}[vqa_d{k}];"
                f"[vqa_d{k}][vqa_r{k}]vstack=shortest=1,format={Y4M_FORMATS}[vqa_p{k}]")


def build_inline(ff: Ffmpeg, cmd: Command, opts) -> InlineBuild:
    if opts.scale_algo not in SCALE_ALGOS:
        raise UsageError(f"unknown --scale-algo {opts.scale_algo!r}; one of: {', '.join(SCALE_ALGOS)}")
    if not cmd.outputs:
        raise UsageError("the ffmpeg command has no output file")
    if not cmd.inputs:
        raise UsageError("the ffmpeg command has no input (-i)")
    probes: List[Optional[MediaInfo]] = [None] * len(cmd.inputs)
    jobs = cmd.probe_jobs()
    for (i, _), info in zip(jobs, probe_all(ff, [j for _, j in jobs])):
        probes[i] = info
    gouts = {}
    for g in cmd.graphs:
        gouts.update(graph_outputs(g))
    notes: List[str] = []
    plans: List[InlinePlan] = []
    uses_stdout = False
    for out in cmd.outputs:
        if out.url in ("-", "pipe:", "pipe:1"):
            uses_stdout = True
        streams = _output_streams(out, cmd, probes, gouts)
        fmt = next((o.value for o in reversed(out.get("f"))), None)
        vid_no = 0
        scored_any = False
        for abs_idx, st in enumerate(streams):
            if st.kind != "video":
                continue
            codec = _codec_for(out, abs_idx, vid_no)
            vid_no += 1
            where = f"output #{out.index} ({out.url}) stream {abs_idx}"
            if codec == "copy":
                notes.append(f"not scoring {where}: stream copy (nothing is encoded)")
                continue
            if fmt == "null":
                notes.append(f"not scoring {where}: null output")
                continue
            ref_label, ref_info = _reference_for(st, probes)
            if ref_label is None:
                notes.append(f"not scoring {where}: cannot tell which input it is encoded from")
                continue
            _check_audio_deadlock(out, streams, ref_label, probes)
            plans.append(InlinePlan(out, abs_idx, ref_label, ref_info))
            scored_any = True
        if not scored_any and not any(s.kind == "video" for s in streams):
            notes.append(f"not scoring output #{out.index} ({out.url}): no video stream")
    scored = []
    for p in plans:
        size = (p.ref_info.width, p.ref_info.height) if p.ref_info and p.ref_info.width else None
        label = f"{p.output.url}#{p.stream_index}"
        scored.append(ScoredStream(label, p.output.url, p.stream_index, size))
    return InlineBuild(ff, cmd, plans, opts.scale_algo, scored, notes, uses_stdout,
                       opts.bitdepth)


def _codec_for(out: OutputFile, abs_idx: int, vid_idx: int, kind: str = "video") -> Optional[str]:
    codec = None
    short = {"video": ("vcodec", "v"), "audio": ("acodec", "a")}.get(kind)
    for o in out.options:
        if o.base in ("c", "codec"):
            spec = o.spec
        elif short and o.base == short[0]:
            spec = short[1] + (":" + o.spec if o.spec else "")
        else:
            continue
        if spec_matches(spec, kind, vid_idx, abs_idx):
            codec = o.value
    return codec


def _input_of(source: Optional[str]) -> Optional[int]:
    head = (source or "").split(":")[0]
    return int(head) if head.isdigit() else None


def _check_audio_deadlock(out: OutputFile, streams: List[_OutStream], ref_label: str,
                          probes) -> None:
    """Refuse the one layout that makes ffmpeg hang with a loopback decoder.

    An output that also encodes audio with a fixed-frame-size encoder (AAC,
    Opus, MP3, AC-3...: anything but PCM or a copy) gets an encoding sync
    queue in ffmpeg; when that audio comes from another input file than the
    scored video, ffmpeg's scheduler holds that input back while the loopback
    decoder waits for the video encoder's lookahead, and nothing moves again
    (checked with FFmpeg 7 to 9, without vqa: ``-dec`` plus ``[dec:0]null``
    is enough).  Better a clear error than a hang."""
    vin = _input_of(ref_label)
    if vin is None:
        return
    aud_no = 0
    for abs_idx, st in enumerate(streams):
        if st.kind != "audio":
            continue
        codec = _codec_for(out, abs_idx, aud_no, "audio")
        aud_no += 1
        if codec is not None and (codec == "copy" or codec.startswith("pcm_")):
            continue
        ain = _input_of(st.source)
        if ain is None:  # ffmpeg's automatic choice: an audio stream of some input
            with_audio = [i for i, p in enumerate(probes)
                          if p is not None and any(s.kind == "audio" for s in p.streams)]
            ain = vin if vin in with_audio or not with_audio else with_audio[0]
        if ain != vin:
            raise UsageError(
                f"cannot score output #{out.index} ({out.url}) inline: it encodes audio from "
                f"input #{ain} and video from input #{vin}, and ffmpeg deadlocks when a loopback "
                f"decoder reads such an output (an ffmpeg scheduler limitation); copy or PCM-encode "
                f"the audio, take it from the video's input, or encode first and run "
                f"'vqa compare SOURCE OUTPUT'")


def _input_streams(probes, idx: int) -> Optional[List[StreamInfo]]:
    if idx >= len(probes):
        raise UsageError(f"-map refers to input #{idx}, but the command has {len(probes)} input(s)")
    p = probes[idx]
    return p.streams if p is not None else None


def _select(streams: Optional[List[StreamInfo]], spec: str, input_idx: int) -> List[_OutStream]:
    """Input streams matched by a map's stream specifier."""
    if streams is None:  # unknown layout: assume one video stream (and maybe audio)
        parts = spec.split(":") if spec else []
        if not parts or parts[0] in ("v", "V"):
            if len(parts) <= 1 or parts[1] == "0":
                return [_OutStream("video", f"{input_idx}:v:0")]
            return []
        if parts[0].isdigit():
            return [_OutStream("video" if parts[0] == "0" else "other", f"{input_idx}:{parts[0]}")]
        return [_OutStream("other", None)]
    out = []
    counters = {}
    for s in streams:
        ti = counters.get(s.kind, 0)
        counters[s.kind] = ti + 1
        if spec_matches(spec, s.kind, ti, s.index):
            out.append(_OutStream(s.kind, f"{input_idx}:{s.index}", info=s))
    return out


def _output_streams(out: OutputFile, cmd: Command, probes, gouts) -> List[_OutStream]:
    disabled = {k for k, o in (("video", "vn"), ("audio", "an"), ("subtitle", "sn"), ("data", "dn"))
                if out.has(o)}
    maps = [o.value for o in out.get("map")]
    streams: List[_OutStream] = []
    if maps:
        for m in maps:
            neg = m.startswith("-")
            m = m.lstrip("-").rstrip("?")
            if m.startswith("["):
                label = m.strip("[]")
                g = gouts.get(label)
                kind = g.kind if g else "video"
                if not neg:
                    streams.append(_OutStream(kind, g.source if g else None, graph_label=label))
                continue
            idx, _, spec = m.partition(":")
            if not idx.isdigit():
                continue
            sel = _select(_input_streams(probes, int(idx)), spec, int(idx))
            if neg:
                drop = {s.source for s in sel}
                streams = [s for s in streams if s.source not in drop]
            else:
                streams += sel
    else:
        # ffmpeg's automatic selection: the highest-resolution video stream,
        # then one audio stream (subtitles are left aside: they come last)
        best = None
        for i, p in enumerate(probes):
            if p is None:
                if best is None:
                    best = _OutStream("video", f"{i}:v:0")
                continue
            for s in p.video:
                if best is None or best.info is None or s.width * s.height > best.info.width * best.info.height:
                    best = _OutStream("video", f"{i}:{s.index}", info=s)
        if best is not None:
            streams.append(best)
        if any(p is not None and any(s.kind == "audio" for s in p.streams) for p in probes):
            streams.append(_OutStream("audio", None))
    return [s for s in streams if s.kind not in disabled]


def _reference_for(st: _OutStream, probes) -> Tuple[Optional[str], Optional[StreamInfo]]:
    src = st.source
    if src is None:
        return None, None
    info = st.info
    parts = src.split(":")
    if info is None and len(parts) >= 2 and parts[0].isdigit():
        i = int(parts[0])
        p = probes[i] if i < len(probes) else None
        if p is not None:
            spec = ":".join(parts[1:])
            sel = _select(p.streams, spec, i)
            vids = [s for s in sel if s.kind == "video"]
            if vids:
                info = vids[0].info
                src = vids[0].source
    return src, info
