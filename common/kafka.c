/* kafka.c - Kafka error names, request header decoding and topic name rules. */
#include "kafka.h"

const char *kafka_err_name(int16_t code) {
    switch (code) {
#define X(name, c, retriable) case (c): return #name;
        KAFKA_ERRORS(X)
#undef X
    default: return "UNKNOWN_ERROR_CODE";
    }
}

bool kafka_err_retriable(int16_t code) {
    switch (code) {
#define X(name, c, retriable) case (c): return (retriable) != 0;
        KAFKA_ERRORS(X)
#undef X
    default: return false;
    }
}

void kreq_hdr_read_fixed(kr_t *r, kreq_hdr_t *h) {
    h->api_key = kr_i16(r);
    h->api_version = kr_i16(r);
    h->correlation_id = kr_i32(r);
    h->client_id = KSTR_NULL;
}

void kreq_hdr_read_rest(kr_t *r, kreq_hdr_t *h, bool flexible) {
    /* client_id is a classic nullable string even in header v2. */
    h->client_id = kr_str(r, false);
    if (flexible) kr_skip_tags(r);
}

bool kafka_topic_name_valid(kstr_t name) {
    if (name.len <= 0 || name.len > 249) return false;
    if ((name.len == 1 && name.p[0] == '.') || (name.len == 2 && name.p[0] == '.' && name.p[1] == '.'))
        return false;
    for (int32_t i = 0; i < name.len; i++) {
        char c = name.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool kafka_utf8_valid(const void *s, size_t n) {
    const unsigned char *p = s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        size_t k;
        uint32_t cp;
        if (c < 0x80) { p++; continue; }
        if ((c & 0xe0) == 0xc0) { k = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { k = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { k = 3; cp = c & 0x07; }
        else return false;
        if ((size_t)(end - p) <= k) return false;
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false; /* overlong, out of range, or a surrogate */
        p += k + 1;
    }
    return true;
}
