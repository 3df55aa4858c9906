"""vqa's native kernel library: Numba's machine code, called without Numba.

A warm start-up with Numba spends ~0.2 s (of ~0.35 s to the first score)
importing Numba, making the kernels' dispatchers and loading their cached
code, all under the GIL.  The code itself is plain machine code: after a run
that called kernels through Numba, a background process (``python -m
vqa_core._native build``) has Numba compile, for each kernel and argument
types that run used, a C-callable wrapper (``numba.cfunc``) that calls the
kernel, emits the whole module as position-independent object code and links
it into a shared library with the C compiler.  Later runs load those
libraries (``dlopen``, a fraction of a millisecond each) and call them through
cffi, which releases the GIL like Numba's ``nogil`` kernels; Numba is then
not imported at all (see :mod:`vqa_core.features._jit`).

- Same code, same numbers: the wrapper calls the kernel that Numba compiled
  (the same LLVM module, the same CPU features), and the tests compare every
  native kernel's results with Numba's.
- A call whose argument types the library lacks (or that a kernel raises
  in) goes to Numba, which is then imported: slower to start, never wrong.
- Libraries are kept per *stamp*: a hash of vqa's kernel sources, the
  Numba and llvmlite installs, Python, the CPU (model and flags) and the
  ``NUMBA_*`` settings; anything else gets a library of its own.
- Where: ``$VQA_NATIVE_DIR``, else ``$XDG_CACHE_HOME/vqa/native``, else
  ``~/.cache/vqa/native``.  ``VQA_NATIVE=0`` turns it off (no use, no build).
- Linux (x86-64, aarch64) only, and only with a C compiler (``$CC`` or
  ``cc``); elsewhere vqa runs on Numba as before.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from typing import Dict, List, Optional, Sequence, Tuple

#: bump when the library's layout or calling convention changes
FORMAT = 1

#: the kernels' argument kinds: arrays ``a:<dtype>:<ndim>`` (C-contiguous),
#: and scalars
_SCALARS = {"int64": "i", "float64": "f", "float32": "s", "bool": "b"}
_RETURNS = {"none": "v", **_SCALARS}
_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
           "float32", "float64")
_C_SCALAR = {"i": "int64_t", "f": "double", "s": "float", "b": "int64_t", "v": "void"}

_lock = threading.Lock()
_callers: Optional[Dict[str, tuple]] = None
_libs: list = []  # loaded libraries, kept alive


def enabled() -> bool:
    """The native library may be used and built here."""
    if os.environ.get("VQA_NATIVE", "1").strip() in ("0", "no", "off", "false"):
        return False
    return sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "aarch64")


def root() -> str:
    """The folder that holds the libraries (one sub-folder per stamp)."""
    d = os.environ.get("VQA_NATIVE_DIR")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vqa", "native")


def _package_stamp(name: str) -> str:
    """Where the package ``name`` is installed and its files' identity,
    without importing it."""
    import importlib.util
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return f"{name}:none"
    parts = [spec.origin]
    folder = os.path.dirname(spec.origin)
    for f in ("__init__.py", "_version.py"):
        try:
            st = os.stat(os.path.join(folder, f))
            parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            pass
    return "|".join(parts)


def _cpu_stamp() -> str:
    """The CPU's model and flags (the first processor of /proc/cpuinfo)."""
    keep = []
    try:
        with open("/proc/cpuinfo", "rb") as f:
            for line in f:
                if not line.strip():
                    break
                key = line.split(b":", 1)[0].strip().lower()
                if key in (b"model name", b"flags", b"features", b"cpu implementer",
                           b"cpu part", b"vendor_id", b"cpu family", b"model"):
                    keep.append(line.strip())
    except OSError:
        pass
    return hashlib.sha256(b"\n".join(keep)).hexdigest()


_stamp: Optional[str] = None


def stamp() -> str:
    """The hash that names this configuration's library folder."""
    global _stamp
    if _stamp is None:
        h = hashlib.sha256()
        h.update(f"format {FORMAT}\n{sys.version}\n{sys.implementation.cache_tag}\n".encode())
        h.update(_package_stamp("numba").encode())
        h.update(_package_stamp("llvmlite").encode())
        h.update(_cpu_stamp().encode())
        for k in sorted(os.environ):
            if k.startswith("NUMBA_") and k not in ("NUMBA_CACHE_DIR", "NUMBA_NUM_THREADS"):
                h.update(f"{k}={os.environ[k]}\n".encode())
        here = os.path.dirname(os.path.abspath(__file__))
        feats = os.path.join(here, "features")
        files = [os.path.join(feats, f) for f in sorted(os.listdir(feats)) if f.endswith(".py")]
        for path in files + [os.path.abspath(__file__)]:
            with open(path, "rb") as f:
                h.update(os.path.basename(path).encode() + b"\0" + f.read())
        _stamp = h.hexdigest()[:32]
    return _stamp


def folder() -> str:
    return os.path.join(root(), stamp())


def _manifest_path() -> str:
    return os.path.join(folder(), "manifest.json")


def read_manifest() -> dict:
    try:
        with open(_manifest_path()) as f:
            m = json.load(f)
        if m.get("format") == FORMAT:
            return m
    except (OSError, ValueError):
        pass
    return {"format": FORMAT, "entries": [], "failed": []}


def ready() -> bool:
    """A library with at least one kernel exists for this configuration
    (cheap: no library is loaded)."""
    if not enabled():
        return False
    try:
        return os.path.exists(_manifest_path())
    except Exception:
        return False


# ---------------------------------------------------------------- signatures

def spec_of(sig) -> Optional[Tuple[List[str], str]]:
    """Our argument and return kinds for a Numba signature, or None if the
    native library cannot take it (only C-contiguous arrays of plain dtypes
    and int64, float64, float32 and bool scalars)."""
    args = []
    for a in sig.args:
        if hasattr(a, "ndim") and hasattr(a, "layout"):
            dt = str(a.dtype)
            if a.layout != "C" or dt not in _DTYPES or not a.mutable or not a.aligned:
                return None
            args.append(f"a:{dt}:{a.ndim}")
        elif str(a) in _SCALARS:
            args.append(_SCALARS[str(a)])
        else:
            return None
    rt = sig.return_type
    ret = _RETURNS.get(str(rt))
    if ret is None and isinstance(getattr(rt, "types", None), tuple) and 0 < len(rt.types) <= 16:
        kinds = [_SCALARS.get(str(t)) for t in rt.types]
        if all(kinds):
            ret = "T:" + "".join(kinds)  # a tuple of scalars
    if ret is None:
        return None
    return args, ret


def _ctype(args: Sequence[str], ret: str) -> str:
    """The entry's C type: the arguments (an array as its data pointer and
    shape), a tuple's outputs (int64 and double slots), the status."""
    ps = []
    for a in args:
        if a.startswith("a:"):
            ps += ["void *"] + ["int64_t"] * int(a.split(":")[2])
        else:
            ps.append(_C_SCALAR[a])
    if ret.startswith("T:"):
        ps += ["void *", "void *"]
    ps.append("int64_t *")
    r = "void" if ret.startswith("T:") else _C_SCALAR[ret]
    return f"{r}(*)({', '.join(ps)})"


def _make_caller(fp, args: Sequence[str], ret: str, ffi):
    """A Python function that checks the arguments' types (as Numba would
    type them) and calls the native entry ``fp``; it raises ``_Miss`` when
    they are not this entry's."""
    import numpy as np
    from .features._jit import _Miss
    env = {"_Miss": _Miss, "_nd": np.ndarray, "_fp": fp, "_fb": ffi.from_buffer,
           "_new": ffi.new, "_ST": ffi.typeof("int64_t[1]"),
           "_int": int, "_i64": np.int64, "_float": float, "_f64": np.float64,
           "_f32": np.float32, "_bool": bool, "_b": np.bool_}
    names = [f"x{i}" for i in range(len(args))]
    body, cargs = [], []
    for i, a in enumerate(args):
        x = names[i]
        if a.startswith("a:"):
            _, dt, nd = a.split(":")
            nd = int(nd)
            env[f"_d{i}"] = np.dtype(dt)
            body.append(f"if {x}.__class__ is not _nd or {x}.dtype is not _d{i}: raise _Miss")
            dims = [f"{x}_{j}" for j in range(nd)]
            body.append(f"{', '.join(dims)}{',' if nd == 1 else ''} = {x}.shape")
            cargs += [f"_fb({x})"] + dims
        elif a == "i":
            body.append(f"if {x}.__class__ is not _int and {x}.__class__ is not _i64: raise _Miss")
            cargs.append(x)
        elif a == "f":
            body.append(f"if {x}.__class__ is not _float and {x}.__class__ is not _f64: raise _Miss")
            cargs.append(x)
        elif a == "s":
            body.append(f"if {x}.__class__ is not _f32: raise _Miss")
            cargs.append(x)
        elif a == "b":
            body.append(f"if {x}.__class__ is not _bool and {x}.__class__ is not _b: raise _Miss")
            cargs.append(f"(1 if {x} else 0)")
    body.append("st = _new(_ST)")
    if ret.startswith("T:"):
        kinds = ret[2:]
        env["_TI"] = ffi.typeof(f"int64_t[{len(kinds)}]")
        env["_TF"] = ffi.typeof(f"double[{len(kinds)}]")
        body.append("ti = _new(_TI)")
        body.append("tf = _new(_TF)")
        body.append(f"_fp({', '.join(cargs + ['ti', 'tf', 'st'])})")
        body.append("if st[0]: raise _Miss")
        items = [f"tf[{k}]" if c in "fs" else f"ti[{k}] != 0" if c == "b" else f"ti[{k}]"
                 for k, c in enumerate(kinds)]
        body.append(f"return ({', '.join(items)},)")
    else:
        body.append(f"r = _fp({', '.join(cargs + ['st'])})")
        body.append("if st[0]: raise _Miss")  # the kernel raised: Numba says what
        body.append({"v": "return None", "b": "return r != 0"}.get(ret, "return r"))
    src = f"def call({', '.join(names)}):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(src, "<vqa native caller>", "exec"), env)
    return env["call"]


# ---------------------------------------------------------------- loading

def _load() -> Dict[str, tuple]:
    """Load this configuration's libraries: {kernel name: callers}."""
    if not enabled():
        return {}
    m = read_manifest()
    if not m["entries"]:
        return {}
    try:
        os.utime(_manifest_path())  # in use (see _prune)
    except OSError:
        pass
    import _cffi_backend as B
    ffi = B.FFI()
    getter = ffi.typeof("void *(*)(void)")
    out: Dict[str, list] = {}
    base = folder()
    for e in m["entries"]:
        try:
            lib = B.load_library(os.path.join(base, e["lib"]), os.RTLD_NOW | os.RTLD_LOCAL)
            addr = lib.load_function(getter, "vqa_entry")()
            fp = ffi.cast(_ctype(e["args"], e["ret"]), addr)
            call = _make_caller(fp, e["args"], e["ret"], ffi)
        except Exception:
            continue  # a damaged or foreign file: Numba for this one
        _libs.append(lib)
        out.setdefault(e["kernel"], []).append(call)
    return {k: tuple(v) for k, v in out.items()}


def load() -> None:
    """Load the libraries now (else at the first kernel call)."""
    callers("")


def callers(kernel: str) -> tuple:
    """The native callers of ``kernel`` (its module and name), one per
    argument types the library has; () if none."""
    global _callers
    if _callers is None:
        with _lock:
            if _callers is None:
                try:
                    _callers = _load()
                except Exception:
                    _callers = {}
    return _callers.get(kernel, ())


# ---------------------------------------------------------------- building

def wanted() -> List[dict]:
    """What this process called from Python through Numba and the library
    could take: ``{"kernel", "args", "ret"}`` for each kernel and signature.

    Those are the kernels of :data:`~vqa_core.features._jit.used` (the
    dispatchers note Python's calls, not a callee's compilation or load
    inside another kernel's: see ``_jit._watch``)."""
    from .features import _jit
    out = []
    for name in sorted(_jit.used):
        d = _jit.dispatcher_of(_jit.kernels.get(name))
        for cres in getattr(d, "overloads", {}).values():
            spec = spec_of(cres.signature)
            if spec is not None:
                out.append({"kernel": name, "args": spec[0], "ret": spec[1]})
    return out


def _key(e: dict) -> str:
    return f"{e['kernel']}({','.join(e['args'])})->{e['ret']}"


def _known(m: dict) -> set:
    """The keys of the manifest ``m``'s entries, built or failed."""
    return {_key(e) for e in m["entries"]} | set(m.get("failed", []))


def build_later() -> Optional[object]:
    """Start a background build of what this process used through Numba
    and the library lacks (the command calls this as it ends).  Returns
    the process, or None if there is nothing to build."""
    if not enabled():
        return None
    try:
        want = wanted()
        if not want:
            return None
        have = _known(read_manifest())
        todo = [e for e in want if _key(e) not in have]
        if not todo:
            return None
        import subprocess
        os.makedirs(folder(), exist_ok=True)
        p = subprocess.Popen(
            # --wait: behind a build already running (another run's), not
            # instead of it; it skips what that one added
            [sys.executable, "-m", "vqa_core._native", "build", json.dumps(todo), "--wait"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, preexec_fn=_nice)
        # until the builder has taken its lock and ended (wait_for_builds)
        open(os.path.join(folder(), f".pending-{p.pid}"), "w").close()
        return p
    except Exception:
        return None


def _nice() -> None:  # pragma: no cover - runs in the child
    try:
        os.nice(10)
    except OSError:
        pass


def _lock_file(block: bool):
    """An exclusive lock on this configuration's folder (None if another
    process holds it and ``block`` is false)."""
    import fcntl
    os.makedirs(folder(), exist_ok=True)
    f = open(os.path.join(folder(), ".lock"), "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except OSError:
        f.close()
        return None
    return f


def _pending() -> List[str]:
    """Markers of builds started and not ended (those of dead processes are
    removed)."""
    try:
        names = [n for n in os.listdir(folder()) if n.startswith(".pending-")]
    except OSError:
        return []
    alive = []
    for n in names:
        if _is_builder(n.split("-", 1)[1]):
            alive.append(n)
            continue
        try:
            os.unlink(os.path.join(folder(), n))
        except OSError:
            pass
    return alive


def _is_builder(pid: str) -> bool:
    """Process ``pid`` is alive and a build of this module (not another
    process that got a dead builder's number)."""
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as f:
            return b"vqa_core._native" in f.read()
    except (ValueError, OSError):
        return False


def wait_for_builds(timeout: float = 600.0) -> bool:
    """Wait until no build of this configuration's library is pending or
    running (for benchmarks and tests); False on timeout."""
    import time
    end = time.monotonic() + timeout
    while True:
        if not _pending():
            f = _lock_file(False)
            if f is not None:
                f.close()
                return True
        if time.monotonic() > end:
            return False
        time.sleep(0.2)


_STUBS = r"""
/* Numba's helpers that a C-callable wrapper names on its error path.  The
   wrapper catches every exception of the kernel, so none of these runs; they
   are here so that the library loads without Numba. */
#include <stdlib.h>
#define HIDDEN __attribute__((visibility("hidden")))
extern int PyGILState_Ensure(void);
extern void PyGILState_Release(int);
HIDDEN void numba_gil_ensure(int *s) { *s = PyGILState_Ensure(); }
HIDDEN void numba_gil_release(int *s) { PyGILState_Release(*s); }
HIDDEN int numba_do_raise(void *e) { (void)e; return 0; }
HIDDEN void *numba_unpickle(const char *d, int n, const char *h) { (void)d; (void)n; (void)h; return 0; }
HIDDEN void *numba_runtime_build_excinfo_struct(void *a, void *b) { (void)a; (void)b; return 0; }
HIDDEN void NRT_Free(void *p) { free(p); }
HIDDEN void NRT_MemInfo_call_dtor(void *m) { (void)m; }
"""
_STUBBED = {"numba_gil_ensure", "numba_gil_release", "numba_do_raise", "numba_unpickle",
            "numba_runtime_build_excinfo_struct", "NRT_Free", "NRT_MemInfo_call_dtor"}


def elf_undefined_symbols(obj: bytes) -> Optional[set]:
    """The names an ELF64 little-endian relocatable object needs from
    elsewhere, or None if ``obj`` is not one."""
    from . import _elf
    syms = _elf.symbols(obj)
    return None if syms is None else {n for n, _, shndx in syms if shndx == 0}


def _wrapper_source(args: Sequence[str], ret: str) -> str:
    params, lines, call = [], [], []
    for i, a in enumerate(args):
        if a.startswith("a:"):
            nd = int(a.split(":")[2])
            dims = [f"n{i}_{j}" for j in range(nd)]
            params += [f"p{i}"] + dims
            lines.append(f"a{i} = carray(p{i}, ({', '.join(dims)},))")
            call.append(f"a{i}")
        else:
            params.append(f"x{i}")
            call.append(f"x{i} != 0" if a == "b" else f"x{i}")
    tup = ret.startswith("T:")
    if tup:  # the items into int64 (ints, bools) and float64 (floats) slots
        params += ["ti", "tf"]
    params.append("st")
    fail = "return" if ret == "v" or tup else "return 0"
    done = [{"v": "return", "b": "return 1 if r else 0"}.get(ret, "return r")]
    if tup:
        done = [f"tf[{k}] = r[{k}]" if c in "fs" else
                f"ti[{k}] = 1 if r[{k}] else 0" if c == "b" else f"ti[{k}] = r[{k}]"
                for k, c in enumerate(ret[2:])] + ["return"]
    if len(call) <= 16:
        invoke = [f"r = K({', '.join(call)})"]
    else:
        # Python compiles a call (or a tuple) of more than ~30 items into
        # list operations Numba cannot type: the arguments go as a tuple
        # joined from short ones
        parts = [call[i:i + 16] for i in range(0, len(call), 16)]
        invoke = [f"t{j} = ({', '.join(p)},)" for j, p in enumerate(parts)]
        invoke.append(f"r = K(*({' + '.join(f't{j}' for j in range(len(parts)))}))")
    body = lines + ["try:"] + [f"    {x}" for x in invoke] + [
        "except Exception:", "    st[0] = 1", f"    {fail}", "st[0] = 0"] + done
    return f"def wrapper({', '.join(params)}):\n" + "".join(f"    {x}\n" for x in body)


def _numba_sig(args: Sequence[str], ret: str):
    from numba import types
    ps = []
    for a in args:
        if a.startswith("a:"):
            _, dt, nd = a.split(":")
            ps += [types.CPointer(getattr(types, dt))] + [types.int64] * int(nd)
        else:
            ps.append({"i": types.int64, "f": types.float64, "s": types.float32,
                       "b": types.int64}[a])
    if ret.startswith("T:"):
        ps += [types.CPointer(types.int64), types.CPointer(types.float64)]
    ps.append(types.CPointer(types.int64))
    r = types.void if ret.startswith("T:") else {
        "v": types.void, "i": types.int64, "f": types.float64, "s": types.float32,
        "b": types.int64}[ret]
    return r(*ps)


def _compiler() -> List[str]:
    import shlex
    import sysconfig
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def build_entry(entry: dict, out_dir: str, index: int) -> dict:
    """Compile, emit and link one kernel's entry; returns its manifest
    record.  Raises on failure."""
    import importlib
    import subprocess
    import tempfile

    import llvmlite.binding as ll
    import numpy as np
    from numba import carray, cfunc
    from numba.core import config

    from .features import _jit
    _jit.activate()
    mod_name, name = entry["kernel"].rsplit(".", 1)
    kernel = _jit.real(getattr(importlib.import_module(mod_name), name))
    env = {"K": kernel, "carray": carray, "np": np}
    exec(compile(_wrapper_source(entry["args"], entry["ret"]), f"<vqa wrapper {name}>", "exec"), env)
    cf = cfunc(_numba_sig(entry["args"], entry["ret"]))(env["wrapper"])
    lib = cf._library
    cg = lib.codegen
    module = ll.parse_bitcode(lib._final_module.as_bitcode())
    tm = ll.Target.from_triple(module.triple or ll.get_process_triple()).create_target_machine(
        cpu=cg._get_host_cpu_name(), features=cg._tm_features, opt=config.OPT,
        reloc="pic", codemodel="default")
    obj = tm.emit_object(module)
    need = elf_undefined_symbols(obj)
    if need is None:
        raise RuntimeError("not an ELF64 object")
    import ctypes
    here = ctypes.CDLL(None)
    missing = sorted(n for n in need - _STUBBED if not hasattr(here, n))
    if missing:
        raise RuntimeError(f"needs {', '.join(missing[:5])}")
    base = f"{name}-{index}"
    so = os.path.join(out_dir, base + ".so")
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        o = os.path.join(tmp, "k.o")
        c = os.path.join(tmp, "glue.c")
        with open(o, "wb") as f:
            f.write(obj)
        symbol = cf.native_name.replace("\\", "\\\\").replace('"', '\\"')
        with open(c, "w") as f:
            f.write(_STUBS)
            f.write(f'extern char vqa_k[] __asm__("{symbol}");\n'
                    "void *vqa_entry(void) { return (void *)vqa_k; }\n")
        part = os.path.join(tmp, "k.so")
        subprocess.run(_compiler() + ["-shared", "-fPIC", "-O2", "-o", part, c, o, "-lm"],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)
        os.replace(part, so)
    return {"kernel": entry["kernel"], "args": list(entry["args"]), "ret": entry["ret"],
            "lib": os.path.basename(so)}


def build(entries: Sequence[dict], block: bool = False) -> Tuple[int, int]:
    """Build the ``entries`` the manifest lacks (each ``{"kernel", "args",
    "ret"}``); one build per configuration at a time (``block``: wait for
    the one running, else return at once).  Returns (built, failed)."""
    lock = _lock_file(block)
    if lock is None:
        return 0, 0
    try:
        _prune()
        m = read_manifest()
        have = _known(m)
        built = failed = 0
        for e in entries:
            if _key(e) in have:
                continue
            try:
                rec = build_entry(e, folder(), len(m["entries"]) + len(m["failed"]))
                m["entries"].append(rec)
                built += 1
            except Exception as err:  # Numba for this one, and not again
                m.setdefault("failed", []).append(_key(e))
                m.setdefault("errors", {})[_key(e)] = str(err)[-300:]
                failed += 1
            have.add(_key(e))
            tmp = _manifest_path() + ".tmp"
            with open(tmp, "w") as f:
                json.dump(m, f, indent=1)
            os.replace(tmp, _manifest_path())
        return built, failed
    finally:
        lock.close()
        try:
            os.unlink(os.path.join(folder(), f".pending-{os.getpid()}"))
        except OSError:
            pass


#: a configuration's folder unused this long is removed by the next build
PRUNE_DAYS = 30


def _prune() -> None:
    """Remove other configurations' folders (older vqa, Numba, CPU...) that
    no run has read for PRUNE_DAYS."""
    import shutil
    import time
    here = stamp()
    try:
        names = os.listdir(root())
    except OSError:
        return
    for n in names:
        path = os.path.join(root(), n)
        if n == here or len(n) != 32 or not os.path.isdir(path):
            continue
        try:
            used = os.stat(os.path.join(path, "manifest.json")).st_mtime
        except OSError:
            used = os.stat(path).st_mtime
        if time.time() - used > PRUNE_DAYS * 86400:
            shutil.rmtree(path, ignore_errors=True)


USAGE = """usage: python -m vqa_core._native status|wait|prepare|build

  status   this configuration's library: its folder and kernels
  wait     wait for builds of it to end (e.g. before an image layer is
           committed, after a first vqa run made one)
  prepare [--model NAME]... [--metrics M,M] [--bit-depth N]...
           build now, without a video, what runs of these models
           (default vmaf_v0.6.1) and metrics at these bit depths (default
           8) call: each is run on small synthetic frames, as vqa's
           warm-up does (compiling first on a cold Numba cache)
  build JSON [--wait]
           build the entries JSON names (what a vqa command starts)
"""


def prepare(models: Sequence[str] = ("vmaf_v0.6.1",), metrics: Sequence[str] = (),
            depths: Sequence[int] = (8,)) -> Tuple[int, int]:
    """Run the kernels of ``models`` and ``metrics`` at ``depths`` on
    synthetic frames (vqa_core.warmup) and build what they called through
    Numba; returns (built, failed)."""
    from .engine import needs_chroma
    from .features import _jit
    from .models import load_model
    from .warmup import warm_up
    _jit.activate()
    loaded = [load_model(m) for m in models]
    # the luma-only layout of runs that need no chroma, and 4:2:0 (chroma
    # metrics, models with chroma features such as vmaf_v1.0.16's SpEED)
    layouts = ("420",) if needs_chroma(metrics, loaded) else ("400", "420")
    for depth in depths:
        for chroma in layouts:
            warm_up(chroma, depth, list(metrics), loaded)
    return build(wanted(), block=True)


def main(argv: Sequence[str]) -> int:
    if len(argv) >= 2 and argv[0] == "build":
        build(json.loads(argv[1]), block="--wait" in argv[2:])
        return 0
    if argv[:1] == ["wait"]:
        return 0 if wait_for_builds() else 1
    if argv[:1] == ["prepare"]:
        import argparse
        p = argparse.ArgumentParser(prog="python -m vqa_core._native prepare")
        p.add_argument("--model", action="append", default=[])
        p.add_argument("--metrics", default="")
        p.add_argument("--bit-depth", action="append", type=int, default=[])
        ns = p.parse_args(argv[1:])
        if not enabled():
            sys.stderr.write("native kernel library: off (VQA_NATIVE=0, or not Linux x86-64/aarch64)\n")
            return 1
        metrics = [m for m in ns.metrics.split(",") if m]
        models = ns.model or ([] if metrics else ["vmaf_v0.6.1"])
        try:
            built, failed = prepare(models, metrics, ns.bit_depth or [8])
        except (ValueError, KeyError, OSError) as e:
            sys.stderr.write(f"prepare: {e}\n")
            return 2
        print(f"native kernel library: {folder()}: {built} entries built, {failed} failed "
              f"({len(read_manifest()['entries'])} in all)")
        return 1 if failed else 0
    if argv[:1] == ["status"]:
        if not enabled():
            print("native kernel library: off (VQA_NATIVE=0, or not Linux x86-64/aarch64)")
            return 0
        m = read_manifest()
        print(f"native kernel library: {folder()}")
        print(f"{len(m['entries'])} kernel entries, {len(m.get('failed', []))} failed"
              f"{', a build is pending' if _pending() else ''}")
        for e in m["entries"]:
            print(f"  {e['kernel']}({', '.join(e['args'])}) -> {e['ret']}")
        for k, err in m.get("errors", {}).items():
            print(f"  failed: {k}: {err.splitlines()[0] if err else ''}")
        return 0
    sys.stderr.write(USAGE)
    return 2


if __name__ == "__main__":  # pragma: no cover
    try:
        rc = main(sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:  # "status | head": the reader has what it wanted
        # stdout's buffer cannot be flushed at exit any more: point it at
        # /dev/null so that Python does not report the failed flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        rc = 0
    sys.exit(rc)
