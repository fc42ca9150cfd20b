/* plog.c - a partition's log held in memory: record batches packed into
 * refcounted chunks, with a ring of batch descriptors for offset lookups.
 *
 * Produce copies each validated batch once into the current chunk; Fetch hands
 * out references into chunks (zero copy) that stay valid until the response
 * bytes have left the socket, even if the log drops the chunk meanwhile.
 * Offsets: start_offset <= hw <= next_offset. Consumers see only below hw. */
#include "broker.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Two standard chunk sizes:
 *  - small: 1 MiB from malloc, a partition's first chunk (a quiet partition
 *    costs only the pages it touched);
 *  - huge: 2 MiB, 2 MiB-aligned from mmap with MADV_HUGEPAGE, every chunk
 *    after a partition filled one. Touching fresh memory was the largest
 *    cost of producing (a page fault per 4 KiB, expensive under a
 *    hypervisor); a transparent huge page is one fault per 2 MiB, and fewer
 *    TLB misses for the fetches that read it.
 * Freed chunks are kept for reuse, up to 64 MiB of each size; huge ones
 * beyond that go back to the system (munmap). */
#define PCHUNK_SMALL_SIZE (1u << 20)
#define PCHUNK_HUGE_ALLOC (2u << 20)
#define PCHUNK_HUGE_SIZE ((uint32_t)(PCHUNK_HUGE_ALLOC - sizeof(pchunk_t)))
#define PCHUNK_SMALL 0x736d6c6cu /* "smll" */
#define PCHUNK_HUGE 0x68756765u  /* "huge" */
#define CHUNK_POOL_MAX 64
#define HUGE_POOL_MAX 32
static pchunk_t *small_pool[CHUNK_POOL_MAX], *huge_pool[HUGE_POOL_MAX];
static int small_pool_len, huge_pool_len;

static pchunk_t *huge_map(void) {
    /* Map twice the size and keep the aligned middle. */
    size_t span = 2 * (size_t)PCHUNK_HUGE_ALLOC;
    uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)p + PCHUNK_HUGE_ALLOC - 1) & ~((uintptr_t)PCHUNK_HUGE_ALLOC - 1);
    size_t head = a - (uintptr_t)p, tail = span - head - PCHUNK_HUGE_ALLOC;
    if (head) munmap(p, head);
    if (tail) munmap((uint8_t *)a + PCHUNK_HUGE_ALLOC, tail);
#ifdef MADV_HUGEPAGE
    madvise((void *)a, PCHUNK_HUGE_ALLOC, MADV_HUGEPAGE);
#endif
    return (pchunk_t *)a;
}

/* A chunk for at least `need` bytes; `huge` asks for the huge size. */
static pchunk_t *pchunk_new(uint32_t need, bool huge) {
    pchunk_t *c = NULL;
    uint32_t kind = 0, cap = need;
    if (huge && need <= PCHUNK_HUGE_SIZE) {
        c = huge_pool_len > 0 ? huge_pool[--huge_pool_len] : huge_map();
        kind = PCHUNK_HUGE;
        cap = PCHUNK_HUGE_SIZE;
    } else if (need <= PCHUNK_SMALL_SIZE) {
        c = small_pool_len > 0 ? small_pool[--small_pool_len] : malloc(sizeof *c + PCHUNK_SMALL_SIZE);
        kind = PCHUNK_SMALL;
        cap = PCHUNK_SMALL_SIZE;
    } else {
        c = malloc(sizeof *c + need);
    }
    if (!c) return NULL;
    c->refs = 1;
    c->cap = cap;
    c->len = 0;
    c->kind = kind;
    return c;
}

void pchunk_keep(pchunk_t *c) { c->refs++; }

void pchunk_release(void *arg) {
    pchunk_t *c = arg;
    KS_ASSERT(c->refs > 0);
    if (--c->refs) return;
    if (c->kind == PCHUNK_HUGE) {
        if (huge_pool_len < HUGE_POOL_MAX) huge_pool[huge_pool_len++] = c;
        else munmap(c, PCHUNK_HUGE_ALLOC);
    } else if (c->kind == PCHUNK_SMALL && small_pool_len < CHUNK_POOL_MAX) {
        small_pool[small_pool_len++] = c;
    } else {
        free(c);
    }
}

void plog_init(plog_t *l, int64_t start_offset) {
    memset(l, 0, sizeof *l);
    l->start_offset = l->next_offset = l->hw = start_offset;
}

/* The log holds one reference on every chunk that still has batches, and on
 * the current chunk. Chunks fill in order, so a chunk's batches are adjacent. */
void plog_free(plog_t *l) {
    pchunk_t *prev = NULL;
    for (size_t i = 0; i < l->count; i++) {
        pbatch_t *b = &l->batches[(l->head + i) % l->cap];
        if (b->chunk != prev) pchunk_release(b->chunk);
        prev = b->chunk;
    }
    if (l->cur && l->cur != prev) pchunk_release(l->cur);
    free(l->batches);
    memset(l, 0, sizeof *l);
}

static inline pbatch_t *batch_at(plog_t *l, size_t i) { return &l->batches[(l->head + i) % l->cap]; }

int plog_append(plog_t *l, const uint8_t *batch, uint32_t len, int64_t base, int64_t last, int64_t max_ts) {
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        pbatch_t *nb = malloc(cap * sizeof *nb);
        if (!nb) return -1;
        for (size_t i = 0; i < l->count; i++) nb[i] = *batch_at(l, i);
        free(l->batches);
        l->batches = nb;
        l->cap = cap;
        l->head = 0;
    }
    if (!l->cur || l->cur->cap - l->cur->len < len) {
        /* A partition that filled a chunk gets huge ones from now on. */
        pchunk_t *c = pchunk_new(len, l->cur != NULL);
        if (!c) return -1;
        /* The old current chunk's reference now belongs to its batches; one
         * no batch points into (empty, or all trimmed or dropped) goes now. */
        if (l->cur && !(l->count && batch_at(l, l->count - 1)->chunk == l->cur)) pchunk_release(l->cur);
        l->cur = c;
    }
    pchunk_t *c = l->cur;
    memcpy(c->data + c->len, batch, len);
    *batch_at(l, l->count) = (pbatch_t){base, last, max_ts, c, c->len, len};
    l->count++;
    c->len += len;
    l->next_offset = last + 1;
    l->bytes += len;
    return 0;
}

/* Index (0..count-1) of the batch holding offset, or of the first batch after
 * it; count when none. */
static size_t find_batch(plog_t *l, int64_t offset) {
    size_t lo = 0, hi = l->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (batch_at(l, mid)->last_offset < offset) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int32_t plog_read(plog_t *l, int64_t offset, int64_t max_bytes, bool first, kw_t *hold, karena_t *a,
                  krecords_t *out) {
    *out = (krecords_t){NULL, 0, 0, NULL};
    size_t i = find_batch(l, offset);
    size_t end = i;
    int64_t total = 0;
    /* Count whole batches below the high watermark that fit. */
    while (end < l->count) {
        pbatch_t *b = batch_at(l, end);
        if (b->last_offset >= l->hw) break;
        if (total + b->len > max_bytes && !(first && total == 0)) break;
        total += b->len;
        end++;
        if (total >= INT32_MAX - PCHUNK_HUGE_ALLOC) break;
    }
    if (end == i) return 0;
    /* Coalesce neighbours in the same chunk into one piece. */
    size_t npieces = 0;
    for (size_t k = i; k < end; k++) {
        pbatch_t *b = batch_at(l, k);
        if (k == i || b->chunk != batch_at(l, k - 1)->chunk ||
            b->pos != batch_at(l, k - 1)->pos + batch_at(l, k - 1)->len)
            npieces++;
    }
    kiov_t *iov = karena_alloc(a, npieces * sizeof *iov);
    if (!iov) return 0;
    size_t n = 0;
    for (size_t k = i; k < end; k++) {
        pbatch_t *b = batch_at(l, k);
        if (n && iov[n - 1].p + iov[n - 1].len == b->chunk->data + b->pos) {
            iov[n - 1].len += b->len;
        } else {
            iov[n++] = (kiov_t){b->chunk->data + b->pos, b->len};
            pchunk_keep(b->chunk);
            kw_ref(hold, NULL, 0, pchunk_release, b->chunk);
        }
    }
    out->len = (int32_t)total;
    out->p = iov[0].p;
    out->iov = iov;
    out->niov = (int32_t)n;
    return (int32_t)total;
}

/* Drops batches from the front while their last offset is below `below` and
 * fewer than max_bytes were dropped; a chunk goes when its last batch went
 * (unless it is the current chunk). Returns the bytes dropped. */
int64_t plog_trim_front(plog_t *l, int64_t below, int64_t max_bytes) {
    int64_t freed = 0;
    while (l->count && freed < max_bytes) {
        pbatch_t *b = &l->batches[l->head];
        if (b->last_offset >= below) break;
        pchunk_t *c = b->chunk;
        freed += b->len;
        l->bytes -= b->len;
        l->head = (l->head + 1) % l->cap;
        l->count--;
        bool chunk_done = !l->count || l->batches[l->head].chunk != c;
        if (chunk_done && c != l->cur) pchunk_release(c);
    }
    return freed;
}

void plog_trim_below(plog_t *l, int64_t offset) { plog_trim_front(l, offset, INT64_MAX); }

/* Bytes of the batches whose base offset is in [from, to). */
int64_t plog_bytes_between(plog_t *l, int64_t from, int64_t to) {
    size_t i = find_batch(l, from);
    int64_t n = 0;
    for (; i < l->count; i++) {
        pbatch_t *b = batch_at(l, i);
        if (b->base_offset >= to) break;
        n += b->len;
    }
    return n;
}
