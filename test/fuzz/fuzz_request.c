/* fuzz_request.c - libFuzzer target over the request decoder.
 *
 * The input is a request frame without its 4-byte size prefix: the request
 * header, then the body. It goes through the same steps as broker/conn.c:
 * read the fixed header (key, version, correlation id), look the API up in
 * the dispatch table and refuse unknown keys and versions, read the rest of
 * the header (client id, tags in flexible versions), then decode the body
 * with the API's request schema into an arena.
 *
 * When the body decodes, two more properties are checked:
 *   - what decoded re-encodes, and decoding that encoding and encoding again
 *     gives the same bytes (the codec is stable on anything it accepts);
 *   - for Produce, every partition's records are walked batch by batch with
 *     batch_validate(), as the produce path does.
 * A violated property aborts, so libFuzzer reports it as a crash.
 *
 *   make fuzz FUZZ_SECONDS=60     fuzz, seeded from test/fuzz/corpus
 *   make fuzz-replay              run the corpus once (part of make test)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "broker.h"
#include "kafka.h"
#include "kmsg.h"
#include "msg_produce.h"

#define FUZZ_CHECK(e) ((e) ? (void)0 : fuzz_fail(#e, __LINE__))

static void fuzz_fail(const char *expr, int line) {
    fprintf(stderr, "fuzz_request.c:%d: property violated: %s\n", line, expr);
    abort();
}

/* The inline bytes and refs of a writer, in order, as one malloc'ed buffer. */
static uint8_t *flatten(const kw_t *w, size_t *np) {
    size_t n = kw_size(w), pos = 0, from = 0;
    uint8_t *out = malloc(n ? n : 1);
    FUZZ_CHECK(out != NULL);
    for (size_t i = 0; i < w->nrefs; i++) {
        const kw_ref_t *ref = &w->refs[i];
        FUZZ_CHECK(ref->at >= from && ref->at <= w->len);
        if (ref->at > from) memcpy(out + pos, w->buf + from, ref->at - from);
        pos += ref->at - from;
        from = ref->at;
        if (ref->len) memcpy(out + pos, ref->p, ref->len);
        pos += ref->len;
    }
    if (w->len > from) memcpy(out + pos, w->buf + from, w->len - from);
    pos += w->len - from;
    FUZZ_CHECK(pos == n);
    *np = n;
    return out;
}

static uint8_t *encode(const kschema_t *s, int v, bool flex, const void *in, size_t *np) {
    kw_t w;
    kw_init(&w, 256);
    int rc = kmsg_encode(s, v, flex, &w, in);
    FUZZ_CHECK(rc == 0); /* whatever decoded must encode */
    uint8_t *out = flatten(&w, np);
    kw_free(&w);
    return out;
}

/* encode(decode(x)) is a fixed point of encode . decode. */
static void check_reencode(const kschema_t *s, int v, bool flex, const void *decoded, karena_t *a) {
    size_t n1, n2;
    uint8_t *e1 = encode(s, v, flex, decoded, &n1);
    void *again = karena_alloc(a, s->size);
    FUZZ_CHECK(again != NULL);
    kr_t r = kr_init(e1, n1);
    FUZZ_CHECK(kmsg_decode(s, v, flex, &r, again, a) == 0);
    FUZZ_CHECK(kr_left(&r) == 0);
    uint8_t *e2 = encode(s, v, flex, again, &n2);
    FUZZ_CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
    free(e1);
    free(e2);
}

/* Walks the batches of one records field as the produce path does. */
static void walk_batches(krecords_t records) {
    if (records.len <= 0) return;
    const uint8_t *p = records.p;
    size_t left = (size_t)records.len;
    while (left > 0) {
        batch_info_t bi;
        if (batch_validate(p, left, &bi) != BATCH_OK) break;
        FUZZ_CHECK(bi.length >= BATCH_HEADER_SIZE && (size_t)bi.length <= left);
        p += bi.length;
        left -= (size_t)bi.length;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static karena_t arena; /* reused: reset per input, as per request in the broker */
    karena_reset(&arena);

    kr_t r = kr_init(data, size);
    kreq_hdr_t h;
    kreq_hdr_read_fixed(&r, &h);
    if (r.err) return 0;
    const api_def_t *api = api_lookup(h.api_key);
    if (!api || h.api_version < api->min_version || h.api_version > api->max_version) return 0;
    bool flex = h.api_version >= api->first_flexible;
    kreq_hdr_read_rest(&r, &h, flex);
    if (r.err) return 0;

    const kschema_t *s = api->req_schema;
    void *req = karena_alloc(&arena, s->size);
    if (!req) return 0;
    if (kmsg_decode(s, h.api_version, flex, &r, req, &arena) != 0) return 0;

    if (api->key == KAPI_PRODUCE) {
        const produce_req_t *pr = req;
        for (int32_t t = 0; t < pr->topics.count; t++) {
            const produce_req_topic_t *topic = KARR_AT(pr->topics, produce_req_topic_t, t);
            for (int32_t i = 0; i < topic->partitions.count; i++)
                walk_batches(KARR_AT(topic->partitions, produce_req_part_t, i)->records);
        }
    }
    check_reencode(s, h.api_version, flex, req, &arena);
    return 0;
}
