/* vqa frame shim: a reader thread fills a ring of 64-byte-aligned frame slots
 * from a pipe carrying a yuv4mpeg2 frame stream (after its stream header) or
 * raw fixed-size frames.  Python gets zero-copy views of the slots.
 *
 * Policies: VQA_BLOCK waits for a free slot (no frame is ever lost: the
 * writer sees backpressure); VQA_DROP keeps reading the pipe when the ring is
 * full and counts the frames it skipped (the writer is never slowed). */
#ifndef VQA_SHIM_H
#define VQA_SHIM_H
#include <stdint.h>
#include <stddef.h>

#define VQA_BLOCK 0
#define VQA_DROP 1

/* acquire() results */
#define VQA_FRAME 1
#define VQA_TIMEOUT 0
#define VQA_EOS -1       /* clean end of stream at a frame boundary */
#define VQA_TRUNCATED -2 /* stream ended inside a frame */
#define VQA_IOERROR -3   /* read() failed; see vqa_stats.err */
#define VQA_BADHEADER -4 /* a y4m frame header was not "FRAME..." */

typedef struct vqa_ring vqa_ring;

typedef struct {
    int64_t frames_read;     /* complete frames read from the pipe */
    int64_t frames_dropped;  /* of those, skipped because the ring was full */
    int64_t frames_consumed; /* released by the consumer */
    int64_t bytes_read;
    int64_t truncated_bytes; /* bytes of an incomplete last frame */
    int32_t filled;          /* slots holding frames now */
    int32_t nslots;
    int32_t status;          /* 0 running, else the end code above */
    int32_t err;             /* errno of a failed read */
} vqa_stats;

/* Start a reader on fd.  frame_bytes: payload bytes per frame; y4m: frames
 * are preceded by a "FRAME...\n" line.  Returns NULL on bad arguments or out
 * of memory.  The ring does not own fd: the caller closes it after close(). */
vqa_ring *vqa_ring_open(int fd, size_t frame_bytes, int nslots, int policy, int y4m);
/* Address of slot i's memory (64-byte aligned, frame_bytes long). */
uint8_t *vqa_ring_slot(vqa_ring *r, int i);
/* Wait up to timeout_ms (<0: forever) for the oldest filled slot not yet
 * acquired.  On VQA_FRAME, *slot and *index (0-based number of the frame in
 * the stream, counting dropped frames) are set and the slot stays the
 * caller's until released.  Several slots may be held at once (frames scored
 * in parallel).  Call with the GIL released (cffi does that). */
int vqa_ring_acquire(vqa_ring *r, int timeout_ms, int *slot, int64_t *index);
/* Give back the oldest held slot (slots are released in the order acquired). */
void vqa_ring_release(vqa_ring *r);
void vqa_ring_stats(vqa_ring *r, vqa_stats *out);
/* Stop the reader (it notices within ~50 ms even when the pipe is idle),
 * join it and free the ring. */
void vqa_ring_close(vqa_ring *r);
#endif
