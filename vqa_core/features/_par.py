"""Dynamic row-band scheduling for the parallel kernels.

Numba's ``prange`` hands each thread one fixed share of the iterations
(OpenMP's static schedule; ``set_parallel_chunksize`` only changes the size
of the shares, not who runs them).  A kernel split into one row band per
thread then waits, at the end of every parallel loop, for its slowest band:
when anything else needs a core for a moment (ffmpeg demuxing and piping the
frames, an encoder in an inline run), the other thread idles until the
delayed band is done, and the frame takes that time twice.  Measured on the
2-core machine: a paced ffmpeg next to the in-process VMAF kernels cost +25%
per frame with one band per thread, nothing with one thread.

So the kernels loop ``for c in prange(threads)`` (c picks the thread's
scratch buffers) and take their bands from a shared counter, a few bands
per thread, each thread the next band not yet taken::

    for c in prange(nth):
        while True:
            b = next_band(counter)
            if b >= nbands:
                break
            ...band b with scratch c...

``counter`` is an int64 array of one element set to 0 before the loop.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: bands per thread in the dynamically scheduled kernels
BANDS_PER_THREAD = 4


@intrinsic
def next_band(typingctx, counter):
    """Atomically increment ``counter[0]`` (int64 array) and return its old
    value."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        a = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", a.data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen


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
