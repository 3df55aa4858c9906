/* vqa frame shim; see shim.h. */
#define _GNU_SOURCE /* F_GETPIPE_SZ */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct vqa_ring {
    int fd, nslots, policy, y4m;
    size_t frame_bytes, stride;
    size_t batch;     /* bytes worth waiting for before a read (0: read at once) */
    uint8_t *mem;     /* nslots * stride, 64-byte aligned */
    uint8_t *scratch; /* drop policy: where skipped frames are read */
    int64_t *slot_index;
    int head, count, held;
    volatile int stop;
    int status, err;
    int64_t frames_read, frames_dropped, frames_consumed, bytes_read, truncated_bytes;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t filled, freed;
};

/* Read exactly n bytes unless the stream ends; polls so that stop is seen.
 * Returns bytes read (< n only at end of stream or stop), or -1 on error.
 * ffmpeg writes a pipe in 32 KiB pieces; reading each as it lands would wake
 * this thread (and make the writer wake it) ~190 times per 1080p pair.  When
 * fewer than r->batch bytes wait (and more are due), it sleeps a little
 * first, at most BATCH_WAITS times per read. */
#define BATCH_WAIT_NS 250000L
#define BATCH_WAITS 6
static ssize_t read_full(vqa_ring *r, uint8_t *buf, size_t n) {
    size_t got = 0;
    int waits = 0;
    while (got < n) {
        if (r->stop) return (ssize_t)got;
        struct pollfd p = {r->fd, POLLIN, 0};
        int pr = poll(&p, 1, 50);
        if (pr < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (pr == 0) continue;
        if (r->batch > 0 && waits < BATCH_WAITS && !(p.revents & (POLLHUP | POLLERR))) {
            int avail = 0;
            size_t want = n - got < r->batch ? n - got : r->batch;
            if (ioctl(r->fd, FIONREAD, &avail) == 0 && avail >= 0 && (size_t)avail < want) {
                struct timespec ts = {0, BATCH_WAIT_NS};
                nanosleep(&ts, NULL);
                waits++;
                continue;
            }
        }
        waits = 0;
        ssize_t k = read(r->fd, buf + got, n - got);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return -1;
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

static void finish(vqa_ring *r, int status, int err) {
    pthread_mutex_lock(&r->mu);
    r->status = status;
    r->err = err;
    pthread_cond_broadcast(&r->filled);
    pthread_mutex_unlock(&r->mu);
}

/* Reads a "FRAME[ params]\n" line.  0: ok, 1: clean end, -2 truncated,
 * -3 io error, -4 bad header. */
static int read_frame_header(vqa_ring *r, int64_t *hdr_bytes) {
    uint8_t h[6];
    ssize_t k = read_full(r, h, 6);
    if (k < 0) return -3;
    *hdr_bytes = k;
    if (k == 0) return 1;
    if (k < 6) return memcmp(h, "FRAME", (size_t)k < 5 ? (size_t)k : 5) ? -4 : -2;
    if (memcmp(h, "FRAME", 5) != 0) return -4;
    if (h[5] == '\n') return 0;
    if (h[5] != ' ') return -4;
    for (int i = 0; i < 4096; i++) { /* frame parameters: skip to newline */
        uint8_t c;
        k = read_full(r, &c, 1);
        if (k < 0) return -3;
        if (k == 0) return -2;
        (*hdr_bytes)++;
        if (c == '\n') return 0;
    }
    return -4;
}

static void *reader(void *arg) {
    vqa_ring *r = (vqa_ring *)arg;
    for (;;) {
        int64_t hdr = 0;
        if (r->y4m) {
            int h = read_frame_header(r, &hdr);
            if (r->stop) break;
            if (h == 1) { finish(r, VQA_EOS, 0); return NULL; }
            if (h < 0) {
                pthread_mutex_lock(&r->mu);
                r->truncated_bytes += hdr;
                r->bytes_read += hdr;
                pthread_mutex_unlock(&r->mu);
                finish(r, h, h == -3 ? errno : 0);
                return NULL;
            }
        }
        /* find a destination */
        uint8_t *dst;
        int slot = -1;
        pthread_mutex_lock(&r->mu);
        if (r->policy == VQA_BLOCK) {
            while (r->count == r->nslots && !r->stop) pthread_cond_wait(&r->freed, &r->mu);
        }
        if (r->stop) { pthread_mutex_unlock(&r->mu); break; }
        if (r->count < r->nslots) {
            slot = (r->head + r->count) % r->nslots;
            dst = r->mem + (size_t)slot * r->stride;
        } else {
            dst = r->scratch;
        }
        pthread_mutex_unlock(&r->mu);

        ssize_t k = read_full(r, dst, r->frame_bytes);
        if (r->stop) break;
        int err = errno;
        pthread_mutex_lock(&r->mu);
        if (k > 0) r->bytes_read += k + hdr;
        if (k < 0 || (size_t)k < r->frame_bytes) {
            int status;
            if (k < 0) status = VQA_IOERROR;
            else if (k == 0 && !r->y4m) status = VQA_EOS;
            else { status = VQA_TRUNCATED; r->truncated_bytes += (k > 0 ? k : 0) + hdr; }
            pthread_mutex_unlock(&r->mu);
            finish(r, status, k < 0 ? err : 0);
            return NULL;
        }
        int64_t idx = r->frames_read++;
        if (slot >= 0) {
            r->slot_index[slot] = idx;
            r->count++;
            pthread_cond_broadcast(&r->filled);
        } else {
            r->frames_dropped++;
        }
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

vqa_ring *vqa_ring_open(int fd, size_t frame_bytes, int nslots, int policy, int y4m) {
    if (fd < 0 || frame_bytes == 0 || nslots < 1 || (policy != VQA_BLOCK && policy != VQA_DROP))
        return NULL;
    vqa_ring *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fd = fd;
    r->nslots = nslots;
    r->policy = policy;
    r->y4m = y4m;
    r->frame_bytes = frame_bytes;
    r->stride = (frame_bytes + 63) & ~(size_t)63;
#ifdef F_GETPIPE_SZ
    {   /* half the pipe's buffer, when it holds more than a few writes */
        int cap = fcntl(fd, F_GETPIPE_SZ);
        r->batch = cap >= 256 * 1024 ? (size_t)cap / 2 : 0;
    }
#endif
    if (posix_memalign((void **)&r->mem, 64, r->stride * (size_t)nslots) != 0) r->mem = NULL;
    if (policy == VQA_DROP && posix_memalign((void **)&r->scratch, 64, r->stride) != 0)
        r->scratch = NULL;
    r->slot_index = calloc((size_t)nslots, sizeof(int64_t));
    if (!r->mem || !r->slot_index || (policy == VQA_DROP && !r->scratch)) goto fail;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->filled, NULL);
    pthread_cond_init(&r->freed, NULL);
    if (pthread_create(&r->thread, NULL, reader, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->filled);
        pthread_cond_destroy(&r->freed);
        goto fail;
    }
    return r;
fail:
    free(r->mem);
    free(r->scratch);
    free(r->slot_index);
    free(r);
    return NULL;
}

uint8_t *vqa_ring_slot(vqa_ring *r, int i) {
    if (i < 0 || i >= r->nslots) return NULL;
    return r->mem + (size_t)i * r->stride;
}

int vqa_ring_acquire(vqa_ring *r, int timeout_ms, int *slot, int64_t *index) {
    struct timespec until;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    }
    pthread_mutex_lock(&r->mu);
    while (r->count - r->held == 0 && r->status == 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&r->filled, &r->mu);
        } else if (pthread_cond_timedwait(&r->filled, &r->mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    int res;
    if (r->count - r->held > 0) {
        int i = (r->head + r->held) % r->nslots;
        *slot = i;
        *index = r->slot_index[i];
        r->held++;
        res = VQA_FRAME;
    } else {
        res = r->status ? r->status : VQA_TIMEOUT;
    }
    pthread_mutex_unlock(&r->mu);
    return res;
}

void vqa_ring_release(vqa_ring *r) {
    pthread_mutex_lock(&r->mu);
    if (r->held > 0 && r->count > 0) {
        r->head = (r->head + 1) % r->nslots;
        r->count--;
        r->held--;
        r->frames_consumed++;
        pthread_cond_broadcast(&r->freed);
    }
    pthread_mutex_unlock(&r->mu);
}

void vqa_ring_stats(vqa_ring *r, vqa_stats *out) {
    pthread_mutex_lock(&r->mu);
    out->frames_read = r->frames_read;
    out->frames_dropped = r->frames_dropped;
    out->frames_consumed = r->frames_consumed;
    out->bytes_read = r->bytes_read;
    out->truncated_bytes = r->truncated_bytes;
    out->filled = r->count;
    out->nslots = r->nslots;
    out->status = r->status;
    out->err = r->err;
    pthread_mutex_unlock(&r->mu);
}

void vqa_ring_close(vqa_ring *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->freed);
    pthread_cond_broadcast(&r->filled);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->filled);
    pthread_cond_destroy(&r->freed);
    free(r->mem);
    free(r->scratch);
    free(r->slot_index);
    free(r);
}
