"""The kernels' decorators: Numba, imported only when something needs it.

Importing Numba and making the kernels' dispatchers costs ~0.15 s of every
start-up, held under the GIL, although a run whose kernels are in vqa's native
library (:mod:`vqa_core._native`: Numba's own machine code for them, linked
into a shared library after an earlier run) calls none of Numba.  So the
feature modules decorate their kernels with :func:`njit` and :func:`intrinsic`
from here, and name Numba's and llvmlite's modules through :func:`lazy_module`:

- until Numba is *active*, ``@njit`` returns a :class:`Kernel`: it calls the
  native library's version of the kernel when there is one for the
  arguments' types, and otherwise activates Numba and calls the dispatcher;
- :func:`activate` imports Numba, makes every pending dispatcher and
  intrinsic and puts them in place of their placeholders in every module's
  namespace (Numba finds a kernel's callees there when it compiles it), and
  from then on the decorators return Numba's objects directly.  Everything
  then works exactly as with Numba's decorators.

``VQA_NATIVE=0`` in the environment turns the native library off.
"""
from __future__ import annotations

import importlib
import sys
import threading
import types as _pytypes
from typing import Callable, Dict, List, Optional, Set

#: Numba is imported and the decorators return its objects
_active = False
_lock = threading.RLock()
_pending: List["_Lazy"] = []
#: called (in order) by activate() before the dispatchers are made, and after
_before: List[Callable[[], None]] = []
_after: List[Callable[[], None]] = []
#: the kernels (module.name) called from Python through Numba (see _watch):
#: what a native library build would add
used: Set[str] = set()
#: every kernel decorated here: {module.name: Kernel or Numba's dispatcher}
kernels: Dict[str, object] = {}


def on_activate(fn: Callable[[], None], before: bool = False) -> None:
    """Call ``fn()`` when Numba gets activated (at once if it is already):
    ``before`` the dispatchers are made, or after."""
    with _lock:
        if _active:
            fn()
        else:
            (_before if before else _after).append(fn)


def cancel(fn: Callable[[], None]) -> None:
    """Forget ``fn`` given to :func:`on_activate` (if not called yet)."""
    with _lock:
        for hooks in (_before, _after):
            while fn in hooks:
                hooks.remove(fn)


def num_threads() -> int:
    """Numba's thread count (``NUMBA_NUM_THREADS``, else the CPUs this
    process may run on), without importing Numba."""
    cfg = sys.modules.get("numba.core.config")
    if cfg is not None and hasattr(cfg, "NUMBA_NUM_THREADS"):
        return int(cfg.NUMBA_NUM_THREADS)
    import os
    env = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _Lazy:
    """A placeholder for a Numba object that is made at :func:`activate`."""

    def __init__(self, py_func):
        self.py_func = py_func
        self.real = None
        self.__name__ = getattr(py_func, "__name__", "?")
        self.__qualname__ = getattr(py_func, "__qualname__", self.__name__)
        self.__module__ = getattr(py_func, "__module__", None)
        self.__doc__ = getattr(py_func, "__doc__", None)
        self.__wrapped__ = py_func

    def _make(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def materialize(self):
        if self.real is None:
            activate()
        if self.real is None:  # made after activate() by other means
            with _lock:
                if self.real is None:
                    self._make()
        return self.real

    def __repr__(self):
        return f"<{type(self).__name__} {self.__module__}.{self.__qualname__}>"


class _Miss(Exception):
    """A native call's argument types are not the library's: use Numba."""


class Kernel(_Lazy):
    """An ``@njit`` kernel before Numba is active.  Calling it runs the native
    library's code when it has a version for these argument types, else
    Numba's dispatcher (activating Numba).  Other attributes are the
    dispatcher's."""

    def __init__(self, py_func, options: dict):
        super().__init__(py_func)
        self.options = options
        self.name = f"{self.__module__}.{self.__qualname__}"
        #: native callers, each for one signature (set by vqa_core._native)
        self.natives: tuple = ()
        self._looked = False

    def _make(self):
        self.real = _watch(self.name, _numba_njit(self.options)(self.py_func))

    def __call__(self, *args):
        if not self._looked:
            self._look_up()
        for call in self.natives:
            try:
                return call(*args)
            except _Miss:
                pass
            except (TypeError, ValueError, OverflowError, BufferError, AttributeError):
                pass  # cffi refused an argument: Numba decides (and says why)
        used.add(self.name)
        return self.materialize()(*args)

    def _look_up(self):
        self._looked = True
        try:
            from .. import _native
            self.natives = _native.callers(self.name)
        except Exception:  # no library, or a broken one: Numba
            self.natives = ()

    def __getattr__(self, name):
        if name.startswith("__") or name in ("real", "options", "natives", "name", "py_func"):
            raise AttributeError(name)
        return getattr(self.materialize(), name)


class Intrinsic(_Lazy):
    """An ``@intrinsic`` before Numba is active (only compiled code calls it)."""

    def _make(self):
        from numba.extending import intrinsic as _intrinsic
        self.real = _intrinsic(self.py_func)


def _watch(name: str, dispatcher):
    """Note in :data:`used` when Python calls ``dispatcher`` with argument
    types it has no code for yet: Numba's dispatcher then calls its
    ``_compile_for_args`` (to load or compile); a kernel compiled as another
    kernel's callee goes through ``compile`` alone.  So :data:`used` holds
    the kernels Python calls, on a cold cache as on a warm one."""
    orig = getattr(dispatcher, "_compile_for_args", None)
    if orig is None:  # pragma: no cover - another Numba layout
        return dispatcher

    def _compile_for_args(*args, **kws):
        used.add(name)
        return orig(*args, **kws)

    dispatcher._compile_for_args = _compile_for_args
    return dispatcher


def _numba_njit(options: dict):
    """Numba's njit with ``options``, less ``_nrt`` where this Numba lacks
    that option."""
    from numba import njit as _njit
    if "_nrt" in options:
        try:
            from numba.core.cpu import CPUTargetOptions
            has = hasattr(CPUTargetOptions, "_nrt")
        except Exception:  # pragma: no cover - another Numba layout
            has = False
        if not has:
            options = {k: v for k, v in options.items() if k != "_nrt"}
    return _njit(**options)


def njit(*args, **options):
    """``numba.njit`` (keyword options only), lazily: see the module's text."""
    def deco(fn):
        with _lock:
            name = f"{fn.__module__}.{fn.__qualname__}"
            if _active:
                k = _watch(name, _numba_njit(options)(fn))
            else:
                k = Kernel(fn, options)
                _pending.append(k)
            kernels[name] = k
            return k
    if args:
        if len(args) == 1 and callable(args[0]) and not options:
            return deco(args[0])
        raise TypeError("vqa's njit takes keyword options only")
    return deco


def intrinsic(fn):
    """``numba.extending.intrinsic``, lazily: see the module's text."""
    with _lock:
        if _active:
            from numba.extending import intrinsic as _intrinsic
            return _intrinsic(fn)
        i = Intrinsic(fn)
        _pending.append(i)
        return i


class lazy_module(_pytypes.ModuleType):
    """A module imported at its first attribute access (``types``,
    ``cgutils``, llvmlite's ``ir``: only compiled code's typing and code
    generation use them)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_vqa_target"] = name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        mod = importlib.import_module(self.__dict__["_vqa_target"])
        return getattr(mod, attr)


def activate() -> None:
    """Import Numba and put every kernel's and intrinsic's Numba object in
    place (idempotent, thread-safe)."""
    global _active
    with _lock:
        if _active:
            return
        for fn in _before:
            fn()
        import numba  # noqa: F401
        pending = list(_pending)
        for lz in pending:
            lz._make()
        real = {id(lz): lz.real for lz in pending}
        for mod in list(sys.modules.values()):
            d = getattr(mod, "__dict__", None)
            if not isinstance(d, dict):
                continue
            for k, v in list(d.items()):
                if isinstance(v, _Lazy) and id(v) in real:
                    d[k] = real[id(v)]
        _pending.clear()
        _register_typeof()
        _active = True
        after = list(_after)
        _before.clear()
        _after.clear()
    for fn in after:
        fn()


def _register_typeof() -> None:
    """A placeholder that Numba meets anyway (kept somewhere activate() did
    not look) is typed as its Numba object."""
    from numba.extending import typeof_impl

    @typeof_impl.register(_Lazy)
    def _typeof_lazy(val, c):
        return typeof_impl(val.materialize(), c)


def real(obj):
    """Numba's object for ``obj`` (a :class:`Kernel`, an :class:`Intrinsic`,
    or already Numba's), activating Numba."""
    return obj.materialize() if isinstance(obj, _Lazy) else obj


def dispatcher_of(obj) -> Optional[object]:
    """Numba's dispatcher for ``obj`` if it has been made, else None (does
    not activate Numba)."""
    if isinstance(obj, _Lazy):
        return obj.real
    return obj
