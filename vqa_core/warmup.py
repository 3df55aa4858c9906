"""Start-up: load (or compile) the Numba kernels a run needs before its first
frame arrives, and tell whether that will mean compiling.

Numba keeps compiled kernels in a cache (``__pycache__`` next to the modules,
or, when the installed package's folder is not writable, a user-wide folder:
``$NUMBA_CACHE_DIR`` or ``~/.cache/numba``), reused across runs.  Loading
them still costs a fraction of a second per module; :func:`warm_up` does it on
a small synthetic frame pair of the run's chroma layout and bit depth, so a
session can call it in a thread while ffmpeg starts.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import List, Sequence, Tuple

import numpy as np

from . import _elf, _native
from .engine import EXTRACTOR_METRICS, Scorer
from .features import _jit
from .features.base import FeatureExtractor, FrameFormat
from .features.registry import get_extractor

#: the synthetic pair's size for extractors that do not say (their
#: ``warm_size``): big enough for every extractor's minimum size (CAMBI's
#: 216-pixel encode size, SpEED's 80x80 chroma after a 0.5 prescale) and for
#: SSIM's automatic downscale of the luma (a factor of 2 from 384 rows: its
#: box decimation is compiled here, not at a real frame's first 1080p pass;
#: 4:2:0 chroma stays at factor 1, the other path): SSIM and MS-SSIM use it.
#: VIF, ADM, motion and PSNR warm on 64x64 (a v0.6.1 run warms in 0.05 s
#: instead of 0.075 s), CAMBI on 256x256 and SpEED on 320x320 (the v1 models).
WARM_SIZE = FeatureExtractor.warm_size

#: seconds each extractor takes to compile on a cold cache (one core of the
#: 2-core benchmark machine, 8-bit 4:2:0, a fresh process each; measured with
#: serial kernels on a quick morning): what the work is split by
COMPILE_SECONDS = {"adm": 16, "vif": 15, "speed": 10, "cambi": 5, "ms_ssim": 5,
                   "ssim": 4, "motion": 1, "psnr": 0.5}

#: how long the warm-up waits for its compiling helper process at most
HELPER_TIMEOUT = 300.0


def _noise(shape, top: int) -> np.ndarray:
    """Pseudo-random integers in 0 .. top - 1 (top a power of two), from a
    multiplicative hash of the positions: numpy.random's import alone took
    7-8 ms of every warm-up, which the first frame waits for."""
    n = np.arange(shape[0] * shape[1], dtype=np.uint64)
    h = (n * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019)) >> np.uint64(29)
    h ^= h >> np.uint64(17)
    return (h % np.uint64(top)).reshape(shape)


def _pair(fmt: FrameFormat):
    """A small synthetic frame pair laid out like the pairs of a real stream
    (distorted over reference in one array per plane), so that the same
    compiled versions of the kernels are used."""
    planes_ref, planes_dis = [], []
    for ph, pw in fmt.plane_shapes():
        stacked = _noise((2 * ph, pw), 1 << min(fmt.bitdepth, 10)).astype(fmt.dtype)
        stacked <<= max(fmt.bitdepth - 10, 0)
        planes_dis.append(stacked[:ph])
        planes_ref.append(stacked[ph:])
    return tuple(planes_ref), tuple(planes_dis)


def warm_size(names: Sequence[str]) -> Tuple[int, int]:
    """The synthetic pair's size for the extractors ``names``: the largest
    of their ``warm_size`` (WARM_SIZE unless they say)."""
    sizes = [get_extractor(n).warm_size for n in names]
    if not sizes:
        return WARM_SIZE
    return max(s[0] for s in sizes), max(s[1] for s in sizes)


def _warm_format(chroma: str, bitdepth: int, size: Tuple[int, int] = WARM_SIZE) -> FrameFormat:
    w, h = size
    return FrameFormat(w, h, chroma, bitdepth)


def warm_extractors(chroma: str, bitdepth: int,
                    specs: Sequence[Tuple[str, dict]]) -> None:
    """Run the extractors ``specs`` (``(name, options)`` pairs) on a few
    synthetic pairs (of :func:`warm_size`): compiles (or loads) their
    kernels."""
    fmt = _warm_format(chroma, bitdepth, warm_size([name for name, _ in specs]))
    ref, dis = _pair(fmt)
    for name, options in specs:
        ext = get_extractor(name)(**options)
        ext.setup(fmt)
        for i in range(3):  # temporal extractors need neighbours
            ext.extract(i, ref, dis)
        ext.flush()
        ext.warm_rare(ref, dis)


def split_work(specs: Sequence[Tuple[str, dict]]) -> Tuple[list, list]:
    """Split extractors in two parts of about equal compile time (the
    heaviest first, each to the lighter part); the first part is never the
    lighter one."""
    a: list = []
    b: list = []
    la = lb = 0.0
    for spec in sorted(specs, key=lambda s: -COMPILE_SECONDS.get(s[0], 3)):
        cost = COMPILE_SECONDS.get(spec[0], 3)
        if la <= lb:
            a.append(spec)
            la += cost
        else:
            b.append(spec)
            lb += cost
    return a, b


class _Helper:
    """A child process that compiles some extractors into the shared Numba
    cache while this process compiles the others (Numba compiles on one core;
    the machine has more).  Killed with its parent."""

    def __init__(self, chroma: str, bitdepth: int, specs):
        code = "from vqa_core.warmup import _helper_main; _helper_main()"
        arg = json.dumps({"chroma": chroma, "bitdepth": bitdepth, "specs": specs})
        self.proc = subprocess.Popen([sys.executable, "-c", code, arg],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)

    def wait(self, timeout: float = HELPER_TIMEOUT) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the helper gets SIGKILL when vqa goes, however it goes."""
    try:
        import ctypes
        import signal
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _helper_main() -> None:  # pragma: no cover - runs in the child
    arg = json.loads(sys.argv[1])
    try:
        os.nice(5)
    except OSError:
        pass
    warm_extractors(arg["chroma"], arg["bitdepth"], [tuple(s) for s in arg["specs"]])


def warm_up(chroma: str, bitdepth: int, metrics: Sequence[str] = (),
            models: Sequence[object] = (), parallel: bool = False) -> None:
    """Run every kernel the run needs once, on a small synthetic pair.

    With ``parallel``, the extractors are split in two parts of about equal
    compile time; this process warms the first, and if that means compiling
    (a cold cache), a helper process compiles the second into the shared
    cache meanwhile.  Then everything runs here once (loading what the helper
    compiled)."""
    metrics = [m for m in metrics if m in EXTRACTOR_METRICS]
    names = [EXTRACTOR_METRICS[m] for m in metrics]
    for model in models:
        names += [n for n, _ in model.extractors()]
    fmt = _warm_format(chroma, bitdepth, warm_size(names))
    scorer = Scorer(fmt, metrics, models)
    helper: List[_Helper] = []
    try:
        if parallel:
            specs = [(name, dict(opts)) for name, opts in scorer.extractors]
            mine, theirs = split_work(specs)
            if theirs:
                watch = _CompileWatch(lambda: helper.append(_Helper(chroma, bitdepth, theirs)))
                try:
                    warm_extractors(chroma, bitdepth, mine)
                finally:
                    watch.close()
                for h in helper:
                    h.wait()
        ref, dis = _pair(fmt)
        for i in range(3):  # temporal extractors need neighbours
            scorer.push(i, None, ref, dis)
        scorer.finish()
        for ext in scorer.extractors.values():
            ext.warm_rare(ref, dis)
    finally:
        for h in helper:
            h.kill()


class _CompileWatch:
    """Calls ``on_compile()`` once, at the first kernel compilation (a cache
    miss); loads from the cache do not count."""

    def __init__(self, on_compile):
        self._fired = False
        self._on_compile = on_compile
        self._listener = None
        self._closed = False
        # registered when Numba is activated (at once if it is already):
        # nothing compiles before
        _jit.on_activate(self._register)

    def _register(self):
        from numba.core import event
        watch = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                if not watch._fired:
                    watch._fired = True
                    try:
                        watch._on_compile()
                    except Exception:
                        pass

            def on_end(self, ev):
                pass

        if self._closed:
            return
        self._listener = _Listener()
        event.register("numba:compile", self._listener)

    def close(self):
        self._closed = True
        _jit.cancel(self._register)
        if self._listener is None:
            return
        from numba.core import event
        try:
            event.unregister("numba:compile", self._listener)
        except Exception:
            pass

    @property
    def compiled(self) -> bool:
        return self._fired


def _plain_ndarray_typeof() -> None:
    """Type plain arrays without importing numpy.ma.

    Numba types an argument array with a check that it is not a
    ``numpy.ma.MaskedArray``; with NumPy 2 the attribute ``np.ma`` imports
    numpy.ma, 15 ms of every start-up, at the first call of the first kernel.
    A plain ``ndarray`` (its exact type) cannot be a masked array, so this
    registers a typeof for ndarrays that does the check only for subclasses
    and otherwise does what Numba's does.  Left alone if Numba's typeof is
    not shaped as expected."""
    from numba.core.typing import typeof as tf
    impl = tf.typeof_impl
    base = impl.dispatch(np.ndarray)
    if getattr(base, "vqa_plain", False) or getattr(base, "__name__", "") != "_typeof_ndarray":
        return

    def _typeof_ndarray(val, c):
        if type(val) is not np.ndarray:
            return base(val, c)  # subclasses: Numba's own checks
        try:
            dtype = tf.numpy_support.from_dtype(val.dtype)
        except tf.errors.NumbaNotImplementedError:
            raise tf.errors.NumbaValueError(f"Unsupported array dtype: {val.dtype}")
        layout = tf.numpy_support.map_layout(val)
        return tf.types.Array(dtype, val.ndim, layout, readonly=not val.flags.writeable)

    _typeof_ndarray.vqa_plain = True
    impl.register(np.ndarray)(_typeof_ndarray)


def _lazy_registries() -> None:
    """Load cached kernels without loading Numba's registries first.

    Numba's ``Cache.load_overload`` refreshes the target context before it
    loads a cached function: importing and installing the typing and lowering
    registries of all of Numba (a few hundred modules; with SciPy installed
    also scipy.linalg, through its BLAS check), about 0.35 s of every warm
    start-up, though rebuilding a cached function needs none of it, only
    Numba's runtime (NRT).  This replaces that method by one that initialises
    the runtime and loads.  A cache miss still compiles through Numba's
    compiler, which refreshes both contexts itself; compilations and loads
    still serialise on Numba's compiler lock.  Left alone if this Numba's
    ``Cache`` is not shaped as expected."""
    from numba.core import caching
    from numba.core.runtime import rtsys
    cache = caching.Cache
    if getattr(cache.load_overload, "vqa_lazy", False):
        return
    if not (hasattr(cache, "_load_overload") and
            hasattr(cache, "_guard_against_spurious_io_errors")):
        return

    def load_overload(self, sig, target_context):
        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
        # None if the with block swallowed an I/O error (as Numba's)

    load_overload.vqa_lazy = True
    cache.load_overload = load_overload


def elf_defined_symbols(obj: bytes):
    """The names of the symbols an ELF64 little-endian relocatable object
    defines (functions, data; not section or file symbols), or None if
    ``obj`` is not one."""
    syms = _elf.symbols(obj)
    if syms is None:
        return None
    return {n for n, kind, shndx in syms if shndx != 0 and kind not in _elf.SECTION_OR_FILE}


def _lazy_linking_modules() -> None:
    """Load cached kernels without parsing their LLVM bitcode.

    Numba caches a kernel as its object code plus the LLVM bitcode of its
    whole module, which is only needed to link the kernel into code compiled
    later in the same process; yet every load parses it (with the names it
    defines read from it): 35-45 ms of a warm start-up for the VMAF
    kernels (0.7-0.9 MB).  This loads the object code as Numba does, takes
    the defined names from the object's ELF symbol table (the same set: a
    test checks it on every kernel) and parses the bitcode only when
    something links against the kernel.  Left alone if this Numba's code
    library is not shaped as expected; objects that are not ELF64 load the
    usual way."""
    from llvmlite import binding as ll
    from numba.core import codegen as cg
    lib = cg.CPUCodeLibrary
    if getattr(lib._get_module_for_linking, "vqa_lazy", False):
        return
    if not all(hasattr(lib, a) for a in ("_unserialize", "_get_module_for_linking",
                                         "enable_object_caching", "_set_compiled_object",
                                         "_finalize_final_module")):
        return
    unserialize = lib._unserialize.__func__
    get_module = lib._get_module_for_linking

    def _unserialize(cls, codegen, state):
        name, kind, data = state
        names = elf_defined_symbols(data[0]) if kind == "object" else None
        engine = getattr(codegen, "_engine", None)
        if names is None or not isinstance(getattr(engine, "_defined_symbols", None), set):
            return unserialize(cls, codegen, state)
        self = codegen.create_library(name)
        self.enable_object_caching()
        self._set_compiled_object(data[0])
        self._vqa_bitcode = data[1]
        self._finalize_final_module()
        engine._defined_symbols |= names
        return self

    def _get_module_for_linking(self):
        bitcode = self.__dict__.pop("_vqa_bitcode", None)
        if bitcode is not None and self._shared_module is None:
            self._shared_module = ll.parse_bitcode(bitcode)
        return get_module(self)

    _get_module_for_linking.vqa_lazy = True
    lib._unserialize = classmethod(_unserialize)
    lib._get_module_for_linking = _get_module_for_linking


def _init_runtime() -> None:
    """Initialise Numba's runtime (NRT): it compiles a small LLVM module, about
    25 ms, mostly outside the GIL, so in a thread of its own it overlaps with
    the warm-up importing the feature modules (the first kernel load waits
    for it on Numba's compiler lock)."""
    try:
        from numba.core.registry import cpu_target
        from numba.core.runtime import rtsys
        rtsys.initialize(cpu_target.target_context)
    except Exception:
        pass


#: set by the command line (a process of its own): the preload's import of
#: Numba goes without the optional packages Numba only glances at
SKIP_OPTIONAL_IMPORTS = False

# Numba's import checks SciPy's version if SciPy is installed (it then
# imports it, ~8 ms) and imports PyYAML if installed, to read an optional
# .numba_config.yaml (~10 ms); vqa uses neither.
_OPTIONAL = ("scipy", "yaml")


def _import_numba() -> None:
    """Import Numba; with SKIP_OPTIONAL_IMPORTS, as if SciPy and PyYAML were
    not installed (unless they are imported already, or a .numba_config.yaml
    here needs PyYAML).  Only for a process that imports nothing else
    meanwhile: another thread importing them would fail."""
    if "numba" in sys.modules or not SKIP_OPTIONAL_IMPORTS:
        import numba  # noqa: F401
        return
    hidden = [m for m in _OPTIONAL if m not in sys.modules
              and not (m == "yaml" and os.path.exists(".numba_config.yaml"))]
    for m in hidden:
        sys.modules[m] = None  # "import m" raises ImportError
    try:
        import numba  # noqa: F401
    finally:
        for m in hidden:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]


def prepare_numba() -> None:
    """Import Numba and make loading cached kernels skip Numba's registries
    (:func:`_lazy_registries`) and their LLVM bitcode
    (:func:`_lazy_linking_modules`); Numba's runtime is then initialised in a
    thread of its own (:func:`_init_runtime`).  Idempotent; a failure leaves
    Numba's usual ways."""
    global _prepared
    with _prepare_lock:
        if _prepared:
            return
        _prepared = True
        try:
            _import_numba()
            from numba.core.registry import cpu_target  # noqa: F401
            _lazy_registries()
            _lazy_linking_modules()
            _plain_ndarray_typeof()
            threading.Thread(target=_init_runtime, name="vqa-nrt", daemon=True).start()
        except Exception:  # the warm-up loads the usual way
            pass


_prepared = False
_prepare_lock = threading.Lock()
# whoever activates Numba (vqa_core.features._jit) prepares it first
_jit.on_activate(prepare_numba, before=True)


def preload() -> threading.Thread:
    """Get the kernels' code ready in a daemon thread, so that it overlaps
    with probing the inputs and starting ffmpeg: with a native library for
    this configuration (:mod:`vqa_core._native`), load it (Numba is then
    imported only if a kernel is missing from it); else import Numba (about
    0.25 s) and prepare it (:func:`prepare_numba`).  The warm-up then only
    loads the compiled code.

    Nothing may compile or load a kernel before this thread has ended
    (``join()`` it): the patch must be in place first."""

    def run():
        try:
            if _native.ready():
                _native.load()
            else:
                prepare_numba()
        except Exception:
            pass

    t = threading.Thread(target=run, name="vqa-preload", daemon=True)
    t.start()
    return t


_gc_paused = False


def pause_gc() -> None:
    """Turn the garbage collector off until :func:`resume_gc` (the command
    line, a process of its own, from its start until the kernels are
    loaded).  Start-up makes hundreds of thousands of long-lived objects
    (Numba's import, the feature modules, the kernels) and next to no
    garbage; the collector's passes over them, a full one among them, cost
    30-40 ms of every start, on the threads that hold the GIL."""
    global _gc_paused
    import gc
    if gc.isenabled():
        gc.disable()
        _gc_paused = True


def adopt_gc_pause() -> None:
    """Take over a pause of the collector that the command line made before
    this module could be imported: :func:`resume_gc` ends it."""
    global _gc_paused
    import gc
    if not gc.isenabled():
        _gc_paused = True


def resume_gc() -> None:
    """Undo :func:`pause_gc` (nothing if it did not turn the collector off)."""
    global _gc_paused
    if _gc_paused:
        import gc
        _gc_paused = False
        gc.enable()


def start_warm_up(chroma: str, bitdepth: int, metrics: Sequence[str] = (),
                  models: Sequence[object] = (), on_compile=None, parallel: bool = True,
                  after: "threading.Thread | None" = None):
    """:func:`warm_up` in a daemon thread; ``on_compile()`` is called at the
    first compilation (so the caller can say that it is compiling).  On a
    cold cache the compilation is shared with a helper process
    (``parallel``).  ``after``: a thread to wait for first (:func:`preload`).
    Returns the thread; its ``error`` attribute holds an exception, if any."""

    def compiling():
        resume_gc()  # Numba's compiler makes garbage (a cold cache: seconds of it)
        if on_compile:
            on_compile()

    def run():
        if after is not None:
            after.join()
        watch = _CompileWatch(compiling)
        try:
            warm_up(chroma, bitdepth, metrics, models, parallel=parallel)
            # the hundreds of thousands of objects Numba has made by now live
            # as long as the process: keep them out of the garbage collector's
            # full passes, which otherwise cost the frame loop (psnr compare,
            # 120 1080p frames: 1.30 s -> 1.20 s)
            import gc
            gc.freeze()
        except BaseException as e:  # the real scorer will report it
            t.error = e
        finally:
            watch.close()
            resume_gc()

    t = threading.Thread(target=run, name="vqa-warm-up", daemon=True)
    t.error = None
    t.start()
    return t
