/* TEMPORARY (lead's dev scaffolding, removed before the issue closes): weak
 * fallbacks while broker/store_read.c is being written. */
#include "broker.h"
__attribute__((weak)) int store_read_init(void) { return 0; }
__attribute__((weak)) void store_read_shutdown(void) {}
__attribute__((weak)) int store_read(partition_t *p, int64_t offset, int64_t max_bytes, bool first, kw_t *hold,
                                     karena_t *a, krecords_t *out, int16_t *err) {
    *err = KERR_KAFKA_STORAGE_ERROR;
    return -1;
}
