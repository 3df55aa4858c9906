"""Row bands in the kernels, and why each kernel call runs on one thread.

**One thread per call.**  The kernels are compiled without Numba's
``parallel`` option: a call runs on the calling thread.  vqa gets its
parallelism from frames instead: the session computes several frames at once
("lanes", ``filter/session.py``), one per thread, each with its own scratch
buffers.  Measured on the 2-core machine, two frames side by side beat one
frame on two threads (in-process, 48 1080p frames: 6-24% faster per frame; in
``vqa compare``: v0.6.1 0.99x -> 1.05x of libvmaf): the threads of one frame
meet at a barrier at the end of every parallel loop (CAMBI has ~35 a frame),
and a thread that ffmpeg or an encoder pre-empts stalls its partner there;
two frames share no barrier.  A parallel function also costs Numba about half
as much again to compile (the parfor passes, and the gufunc it builds around
the loop, with another copy of every callee): without them a cold start
compiles ~30% less.

**Bands.**  The kernels still cut a plane into row bands, done one after
the other with one set of scratch buffers (arrays with a leading dimension of
:data:`KERNEL_THREADS`, 1; the kernels use [0])::

    for b in range(nbands):
        ...band b...

A band's scratch (its rows' ring) is small enough to stay in cache; the
results are the same whatever the band split (the integer sums are exact,
the float ones are per row).

**No arrays made in a kernel.**  Scratch comes from the caller, float bits
are read with :func:`f32_bits` / :func:`bits_f32` instead of ``a.view``:
loading a cached kernel that makes or views an array (``np.empty``,
``np.full``, ``.view``) imports numba.np.arrayobj, ~18 ms of every start-up
(``tests/test_warmup.py`` checks that no warm load does).  It also lets
:data:`KERNEL` turn off Numba's reference counting.
"""
from __future__ import annotations

import numpy as np

from ._jit import intrinsic, lazy_module, njit

types = lazy_module("numba.core.types")
ir = lazy_module("llvmlite.ir")

#: threads one kernel call runs on (see the module's text)
KERNEL_THREADS = 1

#: bands per thread in the band kernels
BANDS_PER_THREAD = 4


#: Numba options of the kernels of VIF, ADM and CAMBI: cached, without the
#: GIL, and without Numba's reference counting of arrays (NRT).  They make
#: no arrays (their scratch comes from the caller), so the counting only cost
#: an atomic increment and decrement per array argument or slice at every
#: call between kernels: 5-6% of their time (1080p, one thread: VIF
#: 19.2-19.7 vs 20.1-20.8 ms, ADM 6.3-6.7 vs 6.8-7.1, CAMBI 6.6-6.8 vs
#: 7.1-7.5; SSIM, MS-SSIM and motion unchanged, left as they were).  A
#: kernel of these that made an array would not compile (the tests would
#: say so).
KERNEL = dict(cache=True, nogil=True, _nrt=False)

#: Narrow-lane arithmetic.  Numba's operators promote int32 (uint16, uint8)
#: scalars to int64; numpy's ufuncs on such scalars keep their type (and
#: wrap), which LLVM vectorises 16 (32, 64) lanes wide instead of 8.
lane_mul, lane_add, lane_sub, lane_shr = np.multiply, np.add, np.subtract, np.right_shift
lane_abs, lane_or = np.abs, np.bitwise_or


@njit(**KERNEL, inline="always")
def i32(x):
    return np.int32(x)


def band_count(threads: int, rows: int, min_rows: int = 16) -> int:
    """How many bands to cut ``rows`` into for ``threads`` threads: a few per
    thread, none shorter than ``min_rows`` (each band costs some set-up)."""
    return max(1, min(BANDS_PER_THREAD * threads, rows // min_rows))


@intrinsic
def noinline(typingctx):
    """Keep LLVM from inlining the calling function into its callers: the
    attribute ``noinline``.  Numba re-optimizes a callee's code in every
    caller it is linked into; a big function inlined there is optimized
    again as part of a bigger one (compile time, not run time)."""
    def codegen(context, builder, sig, args):
        builder.function.attributes.add("noinline")
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def f32_bits(typingctx, x):
    """The bits of a float32 as a uint32 (a bit cast; instead of an array
    ``.view``: see the module's text)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint32))

    return types.uint32(types.float32), codegen


@intrinsic
def bits_f32(typingctx, u):
    """The float32 whose bits are the low 32 bits of the integer ``u`` (a
    bit cast)."""
    if not isinstance(u, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[0], sig.args[0], types.uint32)
        return builder.bitcast(v, context.get_value_type(types.float32))

    return types.float32(u), codegen


def ir_splat(builder, x, vty):
    """For intrinsics' code: the LLVM vector of type ``vty`` with every lane
    the scalar ``x`` (an integer wider than the lanes is truncated)."""
    i32 = ir.IntType(32)
    if isinstance(vty.element, ir.IntType) and x.type.width > vty.element.width:
        x = builder.trunc(x, vty.element)
    v = builder.insert_element(ir.Constant(vty, None), x, ir.Constant(i32, 0))
    return builder.shuffle_vector(v, ir.Constant(vty, None),
                                  ir.Constant(ir.VectorType(i32, vty.count), [0] * vty.count))


@intrinsic
def clz64(typingctx, x):
    """Count of leading zero bits of a 64-bit integer (LLVM ctlz; 64 for 0)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, sig, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))

    return x(x), codegen


@intrinsic
def ctz64(typingctx, x):
    """Count of trailing zero bits of a 64-bit integer (LLVM cttz; 64 for 0)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return x(x), codegen
