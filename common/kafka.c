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
