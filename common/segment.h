/* segment.h - the segment (.kfs) and index (.index) object formats, byte for
 * byte those of the Go Kafscale, and their object-store keys.
 *
 * Layout (DESIGN.md "Storage formats"; every integer big-endian):
 *
 *   .kfs    header  32 bytes  "KAFS" | version u16 = 1 | flags u16 |
 *                             base offset i64 | message count i32 |
 *                             created unix ms i64 | reserved u32 (0)
 *           body              Kafka v2 record batches, verbatim, offsets ascending
 *           footer  16 bytes  CRC-32C of the body u32 | last offset i64 | "END!"
 *
 *   .index  header  16 bytes  "IDX\0" | version u16 = 1 | entry count i32 |
 *                             interval i32 | reserved u16 (0)
 *           entries 12 bytes  offset i64 | position i32 (byte position of a
 *                             batch in the .kfs, header included)
 *
 * The header's base offset is the first batch's base offset, its message count
 * the sum of the batches' record counts; the footer's last offset is the last
 * batch's base offset + last offset delta. An index entry is written at the
 * first batch and then at every batch boundary where at least `interval`
 * messages passed since the previous entry (messages of the entry's own batch
 * included), so the first entry is always (base offset, 32).
 *
 * Keys: {namespace}/{topic}/{partition}/segment-{base offset as %020d}.kfs and
 * .index beside it.
 *
 * Writing (the flusher's hot path) never copies a batch: seg_builder_add()
 * takes a batch by reference, reads its 61-byte header, continues the body
 * CRC-32C over it and records it as one iovec piece; seg_builder_finish()
 * encodes header, footer and index and hands back the whole .kfs as iovec
 * pieces (header, batches..., footer) plus the index as one buffer. The
 * builder's arrays are reused by seg_builder_reset(): no allocation per batch
 * or per segment in steady state.
 *
 * Reading: seg_parse() checks a whole .kfs (magics, version, flags, CRC-32C,
 * batch framing and order, message count, last offset); seg_header_decode()
 * and seg_footer_decode() read the 32/16 bytes a ranged GET brings back;
 * seg_index_parse()/seg_index_find() read an index and find where to start a
 * ranged GET for an offset; seg_index_check() proves an index belongs to a
 * segment. Nothing here allocates except the builder.
 *
 * Flags: 0 = plain batches. SEG_FLAG_LZ4 (bit 0) is reserved for a future
 * LZ4-framed body; no writer sets it yet and this reader refuses it, like any
 * other flag it does not know (SEG_EFLAGS), rather than misreading the body.
 */
#ifndef KAFSCALE_SEGMENT_H
#define KAFSCALE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define SEG_MAGIC          0x4B414653u /* "KAFS" */
#define SEG_FOOTER_MAGIC   0x454E4421u /* "END!" */
#define SEG_VERSION        1
#define SEG_HEADER_SIZE    32
#define SEG_FOOTER_SIZE    16
#define SEG_FLAG_LZ4       0x0001u     /* reserved, see above */
#define SEG_FLAGS_KNOWN    0x0000u     /* flags this code reads */

#define SEG_IDX_MAGIC       0x49445800u /* "IDX\0" */
#define SEG_IDX_VERSION     1
#define SEG_IDX_HEADER_SIZE 16
#define SEG_IDX_ENTRY_SIZE  12

/* Messages between index entries when the caller passes 0 (the Go broker's
 * IndexIntervalMessages). */
#define SEG_INDEX_INTERVAL_DEFAULT 100
/* Index positions are i32: a .kfs never grows past this many bytes. */
#define SEG_MAX_SIZE ((uint64_t)INT32_MAX)
/* Longest key seg_key() can produce with a 249-byte topic and a 255-byte
 * namespace, NUL included; a buffer this big never truncates. */
#define SEG_KEY_MAX 600

enum {
    SEG_OK = 0,
    SEG_ETRUNC,       /* shorter than header + footer (or index header) */
    SEG_EMAGIC,       /* header magic is not "KAFS" / "IDX\0" */
    SEG_EVERSION,     /* version other than 1 */
    SEG_EFLAGS,       /* a flag this reader does not know (e.g. LZ4 body) */
    SEG_EFOOTER,      /* footer magic is not "END!" (truncated or not a segment) */
    SEG_ECRC,         /* CRC-32C of the body differs from the footer's */
    SEG_EBATCH,       /* body is not a sequence of whole v2 batches */
    SEG_EORDER,       /* a batch's base offset is not above the previous last offset */
    SEG_EBASE,        /* header base offset differs from the first batch's */
    SEG_ECOUNT,       /* header message count differs from the batches' sum */
    SEG_ELAST,        /* footer last offset differs from the last batch's */
    SEG_EEMPTY,       /* no batches (a segment holds at least one) */
    SEG_ETOOBIG,      /* segment past SEG_MAX_SIZE or message count past INT32_MAX */
    SEG_ENOMEM,
    SEG_EIDX_SIZE,    /* index size is not 16 + 12 * entry count */
    SEG_EIDX_INTERVAL,/* index interval <= 0 */
    SEG_EIDX_ORDER,   /* index entries not strictly ascending (offset and position) */
    SEG_EIDX_POS,     /* an index entry does not point at a batch with its offset */
    SEG_EIDX_RULE,    /* index entries differ from those the interval rule gives */
    SEG_ERANGE,       /* offset below the segment's first index entry */
    SEG_EKEY,         /* not a segment key / cannot make one from these names */
    SEG_E_MAX
};
const char *seg_strerror(int err);

/* ---- header and footer ---- */

void seg_header_encode(uint8_t out[SEG_HEADER_SIZE], int64_t base_offset, int32_t message_count,
                       int64_t created_ms, uint16_t flags);
void seg_footer_encode(uint8_t out[SEG_FOOTER_SIZE], uint32_t crc, int64_t last_offset);

/* What seg_parse() (or the two decoders, for their part) found. */
typedef struct seg_info {
    uint16_t version, flags;
    int64_t base_offset;
    int32_t message_count;
    int64_t created_ms;
    uint32_t crc;             /* from the footer (seg_parse: verified) */
    int64_t last_offset;
    /* seg_parse only: */
    int32_t batch_count;
    int64_t max_timestamp;    /* largest batch max timestamp */
    const uint8_t *body;      /* view into the parsed buffer */
    size_t body_len;
    uint64_t err_pos;         /* on error: byte position in the .kfs where it was found */
} seg_info_t;

/* Reads the 32-byte header (magic, version, flags checked). */
int seg_header_decode(const uint8_t *p, size_t n, seg_info_t *out);
/* Reads the 16-byte footer (magic checked): crc and last_offset. */
int seg_footer_decode(const uint8_t *p, size_t n, seg_info_t *out);
/* Checks a whole .kfs of n bytes; out's views point into p. Batch CRCs are
 * not checked one by one (the body CRC covers them): batch_validate() each
 * batch for that. */
int seg_parse(const uint8_t *p, size_t n, seg_info_t *out);

/* Steps through the batches of a .kfs that seg_parse() accepted: *pos is the
 * file position of a batch (start with SEG_HEADER_SIZE); sets *batch and *len
 * to it and moves *pos to the next one. Returns false at the footer (or on
 * broken framing, which seg_parse() would have refused).
 *   size_t pos = SEG_HEADER_SIZE; const uint8_t *bp; size_t len;
 *   while (seg_next_batch(seg, n, &pos, &bp, &len)) use(bp, len); */
bool seg_next_batch(const uint8_t *seg, size_t n, size_t *pos, const uint8_t **batch, size_t *len);

/* ---- builder ---- */

#define SEG_BUILDER_MAGIC 0x5345474Bu /* "SEGK" */

/* A finished segment; views into the builder, valid until its next reset,
 * add or free. */
typedef struct seg_result {
    const struct iovec *iov;  /* header, every batch (the caller's bytes), footer */
    int iovcnt;
    uint64_t size;            /* bytes of the .kfs */
    const uint8_t *index;     /* the whole .index */
    size_t index_len;
    int32_t index_entries;
    int64_t base_offset, last_offset, max_timestamp, created_ms;
    int32_t message_count, batch_count;
    uint32_t crc;
} seg_result_t;

/* Nothing points into the struct itself: a builder (and a seg_result_t it
 * gave out) may be moved, e.g. by realloc of an array of them. */
typedef struct seg_builder {
    uint32_t magic;           /* SEG_BUILDER_MAGIC while initialised */
    int32_t interval;         /* messages between index entries (> 0) */
    /* the segment being built */
    int64_t base_offset, last_offset, max_timestamp;
    int32_t message_count, batch_count;
    int64_t since_entry;      /* messages since the last index entry */
    uint64_t body_len;
    uint32_t crc;             /* CRC-32C of the body so far */
    bool finished;
    /* reused across segments */
    uint8_t *buf;             /* header (32) | footer (16) | index (16 + 12 per entry) */
    size_t buf_len, buf_cap;
    struct iovec *iov;        /* iov[0] = header, then batches, then footer */
    int iov_len, iov_cap;
} seg_builder_t;

/* interval: messages between index entries; 0 = SEG_INDEX_INTERVAL_DEFAULT
 * (negative is a bug). */
void seg_builder_init(seg_builder_t *b, int32_t interval);
/* Starts a new segment, keeping the arrays. */
void seg_builder_reset(seg_builder_t *b);
void seg_builder_free(seg_builder_t *b);
/* Adds the v2 batch at p (exactly len bytes, its final base offset already
 * written) by reference: p must stay valid and unchanged until the segment
 * has been uploaded. The offsets, record count and max timestamp are read
 * from the batch header, so they cannot disagree with the bytes. Refuses
 * (builder unchanged) a batch whose framing is wrong (SEG_EBATCH), whose base
 * offset is not above the previous batch's last offset (SEG_EORDER), or that
 * would push the segment past SEG_MAX_SIZE or INT32_MAX messages
 * (SEG_ETOOBIG); SEG_ENOMEM if an array could not grow. The batch CRC is not
 * checked here (the broker did on Produce). */
int seg_builder_add(seg_builder_t *b, const uint8_t *p, size_t len);
/* Bytes the .kfs would have if finished now. */
static inline uint64_t seg_builder_size(const seg_builder_t *b) {
    return SEG_HEADER_SIZE + b->body_len + SEG_FOOTER_SIZE;
}
/* Encodes header, footer and index (SEG_EEMPTY when no batch was added).
 * After this only reset or free. */
int seg_builder_finish(seg_builder_t *b, int64_t created_ms, seg_result_t *out);

/* ---- index ---- */

typedef struct seg_index {
    uint16_t version;
    int32_t count;            /* >= 1 */
    int32_t interval;
    const uint8_t *entries;   /* view: count * 12 bytes */
} seg_index_t;

/* Checks magic, version, exact size, interval > 0, at least one entry,
 * entries strictly ascending in offset and position, positions >= 32. */
int seg_index_parse(const uint8_t *p, size_t n, seg_index_t *out);
static inline int64_t seg_index_offset(const seg_index_t *x, int32_t i);
static inline int32_t seg_index_position(const seg_index_t *x, int32_t i);
/* The greatest entry whose offset is <= offset (binary search): where a
 * ranged GET for offset starts. SEG_ERANGE when offset is below the first
 * entry. Offsets past the segment's last offset give the last entry: check
 * them against the footer or the metadata. */
int seg_index_find(const seg_index_t *x, int64_t offset, int64_t *entry_offset, int32_t *position);
/* seg_index_parse + seg_index_find. */
int seg_index_lookup(const uint8_t *idx, size_t n, int64_t offset, int64_t *entry_offset, int32_t *position);
/* Proves idx belongs to seg (both already parsed): every entry points at a
 * batch start whose base offset is the entry's offset (SEG_EIDX_POS), and the
 * entries are exactly those the interval rule gives (SEG_EIDX_RULE).
 * *err_entry gets the first bad entry's number (may be NULL). */
int seg_index_check(const uint8_t *seg, size_t seg_n, const seg_index_t *x, int32_t *err_entry);

/* ---- keys ---- */

enum { SEG_KEY_KFS = 1, SEG_KEY_INDEX = 2 };

/* Writes "{ns}/{topic}/{partition}/segment-%020lld.{ext}" into out (sz bytes,
 * NUL-terminated). ext is "kfs" or "index". SEG_EKEY when a name would make
 * a key that does not parse back (empty, ".", "..", empty path components in
 * ns, a topic with characters Kafka forbids), partition or base offset < 0,
 * or out too small. */
int seg_key(char *out, size_t sz, const char *ns, const char *topic, int32_t partition, int64_t base_offset,
            const char *ext);

/* A key taken apart; ns and topic are views into the key (not terminated). */
typedef struct seg_key_info {
    const char *ns;
    size_t ns_len;
    const char *topic;
    size_t topic_len;
    int32_t partition;
    int64_t base_offset;
    int kind;                 /* SEG_KEY_KFS or SEG_KEY_INDEX */
} seg_key_info_t;

/* The reverse of seg_key(), read from the right (a namespace may contain
 * '/', a topic may not). Only canonical keys parse: 20 offset digits, a
 * partition without sign or leading zeros. SEG_EKEY otherwise. */
int seg_key_parse(const char *key, seg_key_info_t *out);

/* ---- inline ---- */

static inline int64_t seg_index_offset(const seg_index_t *x, int32_t i) {
    const uint8_t *e = x->entries + (size_t)i * SEG_IDX_ENTRY_SIZE;
    return (int64_t)((uint64_t)e[0] << 56 | (uint64_t)e[1] << 48 | (uint64_t)e[2] << 40 | (uint64_t)e[3] << 32 |
                     (uint64_t)e[4] << 24 | (uint64_t)e[5] << 16 | (uint64_t)e[6] << 8 | e[7]);
}
static inline int32_t seg_index_position(const seg_index_t *x, int32_t i) {
    const uint8_t *e = x->entries + (size_t)i * SEG_IDX_ENTRY_SIZE + 8;
    return (int32_t)((uint32_t)e[0] << 24 | (uint32_t)e[1] << 16 | (uint32_t)e[2] << 8 | e[3]);
}

#endif
