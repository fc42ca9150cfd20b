/* shm_ring.h - the shared-memory ring of kafscale-cached: a frozen ABI
 * between processes (DESIGN.md "The shared-memory ring"), and the functions
 * its one writer (cached/) and its readers (the broker's cache_link.c,
 * kafscale-shm) use to touch it. Nothing else may know this layout.
 *
 * One POSIX shm object per node (name KAFSCALE_SHM_NAME, size
 * KAFSCALE_CACHE_BYTES), in host byte order (it never leaves the node):
 *
 *   [0, header_size)                 the header (shm_ring_hdr_t, 4096 bytes)
 *   [table_off, +nentries*entry_size) the entry table (shm_ring_entry_t)
 *   [data_off, +data_size)           the data area: whole .kfs segments,
 *                                    each contiguous, written circularly
 *
 * Readers locate everything through the header's offsets and sizes, never
 * through their own constants, so a later minor version may grow the header
 * or the entries (appending fields into reserved bytes) without breaking an
 * older reader. A new major version is a layout an old reader must refuse.
 *
 * Creation: the writer creates the object, sizes and reserves it
 * (posix_fallocate: a full /dev/shm fails at start, not with SIGBUS later),
 * fills the header with magic 0, issues a release fence and writes the magic
 * last. A reader that sees magic 0 waits (SHM_ENOTREADY); one that sees
 * another magic or major refuses (SHM_EFOREIGN / SHM_EVERSION), saying what
 * it found.
 *
 * Publishing (writer, one thread):
 *   1. reserve len bytes at the head of the data area (wrapping to offset 0
 *      when they do not fit before the end; the skipped tail counts as
 *      written); every entry whose bytes overlap the reservation, and the
 *      oldest entry when the table slot to use is taken, is evicted: its
 *      sequence becomes odd (release fence), its state empty, its sequence
 *      even again;
 *   2. advance head_seq (monotonic data position) past the reservation,
 *      release fence;
 *   3. copy the payload, release fence;
 *   4. write the entry's header words (sequence odd while they change),
 *      release fence, sequence even.
 * Readers never lock and never write: they load an entry's sequence
 * (acquire), copy its fields and the bytes they want, issue an acquire
 * fence and check that (a) the sequence is unchanged and (b) head_seq has
 * not moved more than data_size past the payload's start (unsigned
 * arithmetic: correct across the 64-bit wrap, which the unit tests start
 * next to). Either failing means the writer lapped the reader: retry, or
 * read from the object store. Sequences only ever compare for equality and
 * parity, so they may wrap.
 *
 * Restarts: a writer that finds a ring of its own layout and size under its
 * name adopts it (warm): it bumps the generation, cleans entries a dead
 * predecessor left half-written (odd sequence) and resets the counters.
 * Otherwise it unlinks the object and creates a new one (a new inode).
 * Readers notice either (generation or inode changed) and remap. Exactly one
 * writer: it holds flock(LOCK_EX) on the object for as long as it runs.
 *
 * Cache lines: line 0 of the header never changes after creation; line 1
 * (generation, writer identity) changes only when a writer starts and is
 * what readers load on every lookup; the cursor and the counters, which the
 * writer updates on every load, sit on later lines, so those updates never
 * invalidate the line readers keep hot. Readers own no field: the reads they
 * serve, miss and get lapped on are counted by the broker and reported to
 * cached over its socket (cproto.h), which adds them here.
 */
#ifndef KAFSCALE_SHM_RING_H
#define KAFSCALE_SHM_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHM_RING_MAGIC        0x4B534852u /* "KSHR" */
#define SHM_RING_MAJOR        1
#define SHM_RING_MINOR        0
#define SHM_RING_HEADER_SIZE  4096
#define SHM_RING_ENTRY_SIZE   384
#define SHM_RING_TOPIC_MAX    256         /* bytes for the topic name, NUL-padded (names are <= 249) */
#define SHM_RING_PAGE         4096        /* table and data start on page boundaries */
#define SHM_RING_NAME_MAX     256         /* POSIX shm name, '/' included */
#define SHM_RING_MIN_DATA     (1u << 20)

/* The counters, declared once: the header's layout, kafscale-shm's text and
 * JSON output and the broker's reports all come from this table. Only ever
 * append (a minor version); the header keeps room for 64. */
#define SHM_RING_COUNTERS(X)                                                                            \
    X(hits, "reads the broker served from the ring")                                                    \
    X(misses, "reads that did not find their segment and asked cached to load it")                     \
    X(loads, "segments loaded into the ring (demand, read-ahead and prefetch)")                         \
    X(bytes_loaded, "bytes of the segments loaded")                                                     \
    X(evictions, "segments evicted as the ring wrapped or its table filled")                            \
    X(lapped, "reads the writer lapped while they copied (retried or served from the store)")           \
    X(load_errors, "loads that failed (store error, corrupt or oversized segment)")                     \
    X(load_latency_us, "sum of load latencies in microseconds (store GET, check, copy into the ring)") \
    X(load_latency_max_us, "longest load in microseconds")                                              \
    X(readahead_loads, "loads of segments that follow one a reader asked for")                          \
    X(prefetch_loads, "loads of new segments the flusher committed, for readers close behind")         \
    X(requests, "load requests received from the broker")                                               \
    X(fallbacks, "reads the broker served straight from the store (cached down or load failed)")

enum shm_ring_counter {
#define SHM_RING_X_ENUM(name, help) SHM_C_##name,
    SHM_RING_COUNTERS(SHM_RING_X_ENUM)
#undef SHM_RING_X_ENUM
    SHM_C_MAX
};
#define SHM_RING_COUNTER_SLOTS 64
extern const char *const shm_ring_counter_names[SHM_C_MAX];
extern const char *const shm_ring_counter_help[SHM_C_MAX];

enum { SHM_WRITER_NONE = 0, SHM_WRITER_RUNNING = 1, SHM_WRITER_STOPPED = 2 };
enum { SHM_ENTRY_EMPTY = 0, SHM_ENTRY_SEGMENT = 1 };
/* Why a segment was loaded (shm_ring_entry_t.origin). */
enum { SHM_ORIGIN_DEMAND = 1, SHM_ORIGIN_READAHEAD = 2, SHM_ORIGIN_PREFETCH = 3 };

typedef struct shm_ring_hdr {
    /* line 0 [0, 64): identity, written once at creation (magic last) */
    uint32_t magic;
    uint16_t major, minor;
    uint32_t header_size;
    uint32_t entry_size;
    uint64_t total_size;
    uint64_t table_off;
    uint32_t nentries;
    uint32_t flags;           /* 0; reserved */
    uint64_t data_off;
    uint64_t data_size;
    uint64_t created_us;      /* unix time in microseconds */
    /* line 1 [64, 128): the writer; changes when a writer starts */
    uint64_t generation;      /* +1 at every writer start (create or adopt) */
    int32_t writer_pid;
    uint32_t writer_state;    /* SHM_WRITER_* */
    uint64_t writer_start_us; /* unix time in microseconds */
    uint8_t reserved1[40];
    /* line 2 [128, 192): the cursor (writer-hot) */
    uint64_t head_seq;        /* monotonic data position: bytes reserved so far (wraps at 2^64) */
    uint64_t head_off;        /* where the next payload goes in the data area */
    uint64_t next_slot;       /* entries published so far; the next goes into slot next_slot % nentries */
    uint64_t live_entries;    /* entries holding a segment */
    uint64_t live_bytes;      /* their bytes */
    uint64_t heartbeat_ms;    /* unix time in ms, refreshed every second by a running writer */
    uint8_t reserved2[16];
    /* lines 3-10 [192, 704): counters (writer-hot), SHM_RING_COUNTERS order */
    uint64_t counters[SHM_RING_COUNTER_SLOTS];
    uint8_t reserved3[SHM_RING_HEADER_SIZE - 704];
} shm_ring_hdr_t;

_Static_assert(sizeof(shm_ring_hdr_t) == SHM_RING_HEADER_SIZE, "ring header is 4096 bytes");
_Static_assert(offsetof(shm_ring_hdr_t, magic) == 0, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, major) == 4, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, minor) == 6, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, header_size) == 8, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, entry_size) == 12, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, total_size) == 16, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, table_off) == 24, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, nentries) == 32, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, flags) == 36, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, data_off) == 40, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, data_size) == 48, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, created_us) == 56, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, generation) == 64, "abi: line 1");
_Static_assert(offsetof(shm_ring_hdr_t, writer_pid) == 72, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, writer_state) == 76, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, writer_start_us) == 80, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, head_seq) == 128, "abi: line 2");
_Static_assert(offsetof(shm_ring_hdr_t, head_off) == 136, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, next_slot) == 144, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, live_entries) == 152, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, live_bytes) == 160, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, heartbeat_ms) == 168, "abi");
_Static_assert(offsetof(shm_ring_hdr_t, counters) == 192, "abi: line 3");
_Static_assert(SHM_C_MAX <= SHM_RING_COUNTER_SLOTS, "room for the counters");

typedef struct shm_ring_entry {
    /* line 0 [0, 64): what a lookup reads first */
    uint64_t seq;             /* even: stable; odd: changing */
    uint32_t state;           /* SHM_ENTRY_* */
    uint32_t topic_len;
    uint64_t key_hash;        /* shm_ring_key_hash(topic, partition, base offset) */
    int64_t base_offset;
    int64_t last_offset;
    int32_t partition;
    uint32_t origin;          /* SHM_ORIGIN_* */
    uint64_t data_seq;        /* head_seq when the payload was reserved */
    uint64_t data_off;        /* where the payload is in the data area */
    /* line 1 [64, 128) */
    uint64_t len;             /* payload bytes: the whole .kfs object */
    uint8_t topic_id[16];     /* the topic's id (zero: unknown) */
    uint64_t loaded_us;       /* unix time in microseconds */
    uint32_t load_us;         /* how long the load took */
    uint32_t crc;             /* the segment footer's CRC-32C of the batches */
    uint8_t reserved[24];
    /* [128, 384) */
    char topic[SHM_RING_TOPIC_MAX];
} shm_ring_entry_t;

_Static_assert(sizeof(shm_ring_entry_t) == SHM_RING_ENTRY_SIZE, "ring entry is 384 bytes");
_Static_assert(offsetof(shm_ring_entry_t, seq) == 0, "abi");
_Static_assert(offsetof(shm_ring_entry_t, state) == 8, "abi");
_Static_assert(offsetof(shm_ring_entry_t, topic_len) == 12, "abi");
_Static_assert(offsetof(shm_ring_entry_t, key_hash) == 16, "abi");
_Static_assert(offsetof(shm_ring_entry_t, base_offset) == 24, "abi");
_Static_assert(offsetof(shm_ring_entry_t, last_offset) == 32, "abi");
_Static_assert(offsetof(shm_ring_entry_t, partition) == 40, "abi");
_Static_assert(offsetof(shm_ring_entry_t, origin) == 44, "abi");
_Static_assert(offsetof(shm_ring_entry_t, data_seq) == 48, "abi");
_Static_assert(offsetof(shm_ring_entry_t, data_off) == 56, "abi");
_Static_assert(offsetof(shm_ring_entry_t, len) == 64, "abi");
_Static_assert(offsetof(shm_ring_entry_t, topic_id) == 72, "abi");
_Static_assert(offsetof(shm_ring_entry_t, loaded_us) == 88, "abi");
_Static_assert(offsetof(shm_ring_entry_t, load_us) == 96, "abi");
_Static_assert(offsetof(shm_ring_entry_t, crc) == 100, "abi");
_Static_assert(offsetof(shm_ring_entry_t, topic) == 128, "abi");

/* ---- results ---- */
enum {
    SHM_OK = 0,
    SHM_MISS,       /* no entry for the segment (or one that does not match its size/id) */
    SHM_LAPPED,     /* the writer changed the entry or its bytes while we copied */
    SHM_ENOENT,     /* no shm object of that name */
    SHM_ENOTREADY,  /* being created (magic still 0) */
    SHM_EFOREIGN,   /* not a Kafscale ring (magic) */
    SHM_EVERSION,   /* a major version this code does not know */
    SHM_ETRUNC,     /* smaller than its header says, or than a header */
    SHM_EBADHDR,    /* header fields inconsistent (offsets, sizes) */
    SHM_EBUSY,      /* another writer holds the ring */
    SHM_ETOOBIG,    /* payload larger than half the data area */
    SHM_ESYS,       /* a system call failed (message in err) */
};
const char *shm_ring_strerror(int rc);

/* A mapping of the ring (a writer's or a reader's). */
#define SHM_RING_T_MAGIC 0x72696e67u /* "ring" */
typedef struct shm_ring {
    uint32_t magic;
    bool writer;
    int fd;
    uint8_t *base;
    uint64_t size;
    shm_ring_hdr_t *hdr;
    shm_ring_entry_t *ents;
    uint8_t *data;
    uint32_t nentries;
    uint64_t data_size;
    uint64_t generation;      /* the header's when mapped */
    uint64_t dev, ino;        /* of the object when mapped */
    char name[SHM_RING_NAME_MAX];
} shm_ring_t;

/* A segment, as readers look it up. last_offset < 0, size 0 or a NULL
 * topic_id are not compared; otherwise an entry must match them (a deleted
 * and re-created topic reuses object keys, not topic ids). */
typedef struct shm_ring_key {
    const char *topic;
    size_t topic_len;
    const uint8_t *topic_id;  /* 16 bytes or NULL */
    int32_t partition;
    int64_t base_offset;
    int64_t last_offset;
    uint64_t size;
} shm_ring_key_t;

uint64_t shm_ring_key_hash(const char *topic, size_t topic_len, int32_t partition, int64_t base_offset);

/* The default shm name of a node: "/kafscale-<node id>-<8 hex digits of a
 * hash of the data dir's absolute path>", so that nodes sharing a machine
 * (tests) never share a ring. Validates and normalises an explicit name
 * (KAFSCALE_SHM_NAME: a leading '/' is added; no other '/'). Returns 0, or
 * -1 when the name is not usable (err says why). */
int shm_ring_name(char *out, size_t outsz, const char *explicit_name, const char *data_dir, int32_t node_id,
                  char *err, size_t errsz);

/* ---- the writer (kafscale-cached) ---- */

typedef struct shm_ring_geom {
    uint64_t total_size;      /* bytes of the object (KAFSCALE_CACHE_BYTES) */
    uint32_t nentries;        /* 0: one per 64 KiB of data, 64..65536 */
    /* Tests: where sequences and the data position start (near 2^64). A
     * fresh ring starts both at 0. Ignored on adoption. */
    uint64_t first_seq;
    uint64_t first_head_seq;
} shm_ring_geom_t;

/* Takes the ring `name` as its only writer: adopts an existing ring of the
 * same layout and geometry (*adopted = true), else creates it afresh (an
 * existing object that is ours in another size or version is replaced; one
 * that is not a Kafscale ring is refused, SHM_EFOREIGN). SHM_EBUSY when
 * another writer runs. */
int shm_ring_create(shm_ring_t *r, const char *name, const shm_ring_geom_t *g, bool *adopted, char *err,
                    size_t errsz);
/* Marks the writer stopped, unmaps; with `unlink`, removes the object. */
void shm_ring_writer_close(shm_ring_t *r, bool unlink);
/* Publishes a whole segment (see the protocol above). Returns SHM_OK, or
 * SHM_ETOOBIG when len is 0 or more than half the data area. *evicted gets
 * the number of entries evicted (may be NULL). */
int shm_ring_publish(shm_ring_t *r, const shm_ring_key_t *k, const void *payload, uint64_t len, uint32_t origin,
                     uint32_t load_us, uint32_t crc, uint32_t *evicted);
/* Writer side: is a segment matching k in the ring? */
bool shm_ring_contains(const shm_ring_t *r, const shm_ring_key_t *k);
static inline void shm_ring_count(shm_ring_t *r, int c, uint64_t n) {
    __atomic_store_n(&r->hdr->counters[c], r->hdr->counters[c] + n, __ATOMIC_RELAXED);
}
static inline void shm_ring_count_max(shm_ring_t *r, int c, uint64_t v) {
    if (v > r->hdr->counters[c]) __atomic_store_n(&r->hdr->counters[c], v, __ATOMIC_RELAXED);
}
void shm_ring_heartbeat(shm_ring_t *r, uint64_t now_ms);

/* ---- readers (the broker, kafscale-shm): PROT_READ, never a write ---- */

/* Maps the ring read-only and checks its header (shm_ring_check). */
int shm_ring_open(shm_ring_t *r, const char *name, char *err, size_t errsz);
void shm_ring_close(shm_ring_t *r);
/* Checks a header of an object of `size` bytes: magic, major, sizes and
 * offsets. err says what was found when it is refused. */
int shm_ring_check(const void *base, uint64_t size, char *err, size_t errsz);
/* true when the ring should be remapped: a new writer generation, or the
 * name now refers to another object (or none). */
bool shm_ring_changed(const shm_ring_t *r);

/* Copies [off, off+len) of the segment k (len 0: to its end; cut at its
 * end) into dst (cap bytes). SHM_OK with *got, SHM_MISS, or SHM_LAPPED. */
int shm_ring_read(const shm_ring_t *r, const shm_ring_key_t *k, uint64_t off, uint64_t len, uint8_t *dst,
                  size_t cap, uint64_t *got);

/* The read in steps (what shm_ring_read does; the unit tests interleave a
 * writer between them): find takes a consistent snapshot of the matching
 * entry, copy copies from its payload, validate says whether the copy is
 * intact (SHM_OK) or was lapped (SHM_LAPPED). */
typedef struct shm_ring_cursor {
    uint32_t slot;
    uint64_t seq;
    shm_ring_entry_t e;       /* the snapshot (topic included) */
} shm_ring_cursor_t;
int shm_ring_find(const shm_ring_t *r, const shm_ring_key_t *k, shm_ring_cursor_t *c);
void shm_ring_copy(const shm_ring_t *r, const shm_ring_cursor_t *c, uint64_t off, uint64_t len, uint8_t *dst);
int shm_ring_validate(const shm_ring_t *r, const shm_ring_cursor_t *c);

/* A consistent copy of entry `slot` (false: empty or changing). */
bool shm_ring_entry_snapshot(const shm_ring_t *r, uint32_t slot, shm_ring_entry_t *out);
/* A copy of the header, field by field with atomic loads. */
void shm_ring_header_snapshot(const shm_ring_t *r, shm_ring_hdr_t *out);

#endif
