"""Reading a user's ffmpeg command, just enough to find what it encodes.

We parse only as much of ffmpeg's option grammar as is needed to find the
inputs, the outputs, each output's video streams (``-map``, ``-vn``, the
automatic selection), their codecs (stream copies are not scored) and the
``-filter_complex`` graphs.  The user's arguments are never changed: vqa
appends its own decoders, graph and outputs after them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .errors import UsageError

# ffmpeg options that take no argument (fftools: cmdutils and ffmpeg_opt).  Every
# other option, AVOptions of codecs/formats included, takes exactly one.
_NO_ARG = {
    "L", "h", "?", "help", "-help", "version", "buildconf", "formats", "muxers", "demuxers",
    "devices", "codecs", "decoders", "encoders", "bsfs", "protocols", "filters", "pix_fmts",
    "layouts", "sample_fmts", "dispositions", "colors", "hwaccels", "hide_banner", "report",
    "y", "n", "ignore_unknown", "copy_unknown", "recast_media", "benchmark", "benchmark_all",
    "stdin", "dump", "hex", "re", "copyts", "start_at_zero", "xerror", "shortest", "bitexact",
    "stats", "debug_ts", "vstats", "qphist", "intra", "vn", "an", "sn", "dn", "accurate_seek",
    "seek_timestamp", "find_stream_info", "autorotate", "autoscale", "fix_sub_duration",
    "fix_sub_duration_heartbeat", "psnr", "sameq", "same_quant", "print_graphs",
    "auto_conversion_filters", "display_hflip", "display_vflip", "copyinkf", "deinterlace",
    "ignore_chapters", "reinit_filter_disable", "apply_cropping_disable",
}
# boolean options may be negated with a "no" prefix (-nostdin, -nostats, ...)


def takes_arg(opt: str) -> bool:
    base = opt.split(":", 1)[0]
    if base in _NO_ARG:
        return False
    if base.startswith("no") and base[2:] in _NO_ARG:
        return False
    return True


@dataclass
class Option:
    name: str  # without the dash, with any stream specifier: "c:v", "map"
    value: Optional[str]

    @property
    def base(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def spec(self) -> str:
        return self.name.split(":", 1)[1] if ":" in self.name else ""


@dataclass
class InputFile:
    index: int
    url: str
    options: List[Option]

    def option_args(self) -> List[str]:
        out = []
        for o in self.options:
            out.append("-" + o.name)
            if o.value is not None:
                out.append(o.value)
        return out

    def probeable(self) -> bool:
        """Whether vqa may open this input itself to probe it: files and the
        formats of files, not pipes, network URLs or capture devices (never
        opened twice)."""
        url = self.url
        if url == "-" or url.startswith("pipe:"):
            return False
        fmt = {o.base: o.value for o in self.options}.get("f")
        if fmt and fmt not in _FILE_FORMATS:
            return False
        if "://" in url and not url.startswith("file:"):
            return False
        return True


#: the input formats (-f) of files, which vqa probes (see InputFile.probeable)
_FILE_FORMATS = {"lavfi", "yuv4mpegpipe", "rawvideo", "image2", "concat", "mov", "mp4", "matroska",
                 "mpegts", "avi", "y4m"}


@dataclass
class OutputFile:
    index: int
    url: str
    options: List[Option]

    def get(self, base: str) -> List[Option]:
        return [o for o in self.options if o.base == base]

    def has(self, base: str) -> bool:
        return any(o.base == base for o in self.options)


@dataclass
class Command:
    argv: List[str]
    inputs: List[InputFile]
    outputs: List[OutputFile]
    graphs: List[str]  # -filter_complex / -lavfi texts
    global_options: List[Option] = field(default_factory=list)

    def probe_jobs(self) -> List[Tuple[int, Tuple[str, List[str], str]]]:
        """The inputs vqa probes, as (position in ``inputs``, (url, input
        options, what)) for ffmpeg.probe_all."""
        return [(i, (inp.url, inp.option_args(), f"input #{inp.index}"))
                for i, inp in enumerate(self.inputs) if inp.probeable()]


_GLOBAL_GRAPH = {"filter_complex", "lavfi"}


def parse_command(argv: List[str]) -> Command:
    """Split an ffmpeg argument list (without the program name) into files."""
    inputs: List[InputFile] = []
    outputs: List[OutputFile] = []
    graphs: List[str] = []
    pending: List[Option] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and a != "-" and len(a) > 1:
            name = a[1:]
            if takes_arg(name):
                if i + 1 >= len(argv):
                    raise UsageError(f"ffmpeg option {a} needs a value")
                val = argv[i + 1]
                i += 2
            else:
                val = None
                i += 1
            if name == "i":
                inputs.append(InputFile(len(inputs), val, pending))
                pending = []
                continue
            opt = Option(name, val)
            if opt.base in _GLOBAL_GRAPH:
                graphs.append(val)
            elif opt.base == "filter_complex_script" or opt.base == "/filter_complex":
                try:
                    graphs.append(open(val.lstrip("/")).read())
                except OSError:
                    pass
            pending.append(opt)
        else:
            outputs.append(OutputFile(len(outputs), a, pending))
            pending = []
            i += 1
    return Command(list(argv), inputs, outputs, graphs, pending)


# ------------------------------------------------------------ stream specs

_TYPE = {"v": "video", "V": "video", "a": "audio", "s": "subtitle", "d": "data", "t": "attachment"}


def spec_matches(spec: str, kind: str, type_index: int, abs_index: int) -> bool:
    """Does a stream specifier ("", "v", "v:0", "1", "a:2") match an output stream?"""
    if spec == "":
        return True
    parts = spec.split(":")
    if parts[0] in _TYPE:
        if _TYPE[parts[0]] != kind:
            return False
        if len(parts) == 1:
            return True
        return parts[1].isdigit() and int(parts[1]) == type_index
    if parts[0].isdigit():
        return int(parts[0]) == abs_index
    return False  # program/metadata specifiers: not resolved here


# ------------------------------------------------------------ graph labels

_AUDIO_FILTERS = {
    "volume", "pan", "loudnorm", "highpass", "lowpass", "bandpass", "equalizer", "dynaudnorm",
    "channelsplit", "channelmap", "join", "compand", "speechnorm", "silenceremove", "earwax",
    "extrastereo", "stereotools", "bass", "treble", "firequalizer", "superequalizer", "surround",
    "sidechaincompress", "crossfeed", "rubberband", "showwaves", "showspectrum", "ebur128",
    "replaygain", "silencedetect", "hdcd", "headphone", "sofalizer", "biquad", "allpass",
}
_VIDEO_A_FILTERS = {"alphamerge", "alphaextract", "atadenoise", "avgblur", "amplify", "addroi",
                    "arnndn", "ass", "azmq"}


def _is_audio_filter(name: str) -> bool:
    if name in _VIDEO_A_FILTERS:
        return False
    return name in _AUDIO_FILTERS or (name.startswith("a") and name not in ("alphamerge",))


@dataclass
class GraphOutput:
    label: str
    kind: str  # "video" or "audio"
    source: Optional[str]  # an input stream spec feeding the graph, e.g. "0:v", or None


def graph_outputs(graph: str) -> Dict[str, GraphOutput]:
    """Labelled outputs of a filter_complex, with a guess of their media type and
    of the input stream they come from."""
    chains = _split_chains(graph)
    produced: Dict[str, Tuple[str, List[str], List[str]]] = {}
    for chain in chains:
        labels_in = re.findall(r"^\s*((?:\[[^\]]+\]\s*)*)", chain)[0]
        ins = re.findall(r"\[([^\]]+)\]", labels_in)
        body = chain[len(labels_in):]
        m = re.search(r"((?:\[[^\]]+\]\s*)+)\s*$", body)
        outs = re.findall(r"\[([^\]]+)\]", m.group(1)) if m else []
        core = body[: m.start()] if m else body
        filters = [f.strip().split("=", 1)[0].split("@", 1)[0].strip() for f in core.split(",")]
        for o in outs:
            produced[o] = (core, ins, filters)
    result: Dict[str, GraphOutput] = {}

    def resolve(label: str, depth: int = 0) -> Tuple[str, Optional[str]]:
        core, ins, filters = produced[label]
        kind = "audio" if filters and _is_audio_filter(filters[-1]) else "video"
        src = None
        for i in ins:
            if re.match(r"^\d+(:|$)", i):
                src = i
                break
            if i in produced and depth < 50:
                _, s = resolve(i, depth + 1)
                if s:
                    src = s
                    break
        return kind, src

    for label in produced:
        kind, src = resolve(label)
        result[label] = GraphOutput(label, kind, src)
    return result


def _split_chains(graph: str) -> List[str]:
    out, cur, q = [], [], None
    for ch in graph:
        if q:
            cur.append(ch)
            if ch == q:
                q = None
            continue
        if ch in "'":
            q = ch
        if ch == ";":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [c for c in out if c.strip()]
