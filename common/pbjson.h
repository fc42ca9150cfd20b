/* pbjson.h - protobuf-c messages to and from JSON, driven by the messages'
 * own descriptors (no per-message code): the control API
 * (proto/control/broker.proto) answers JSON or protobuf from the same
 * structs, and kafscale-ctl prints --json from what it received.
 *
 * The proto3 JSON mapping, with two choices of ours, written down in
 * broker.proto too: keys are the proto field names (snake_case; lowerCamelCase
 * is accepted when reading), and 64-bit integers are JSON numbers (strings
 * are accepted when reading). Every field is written, defaults included, so
 * scripts need no fallbacks. Enums are written by name, read by name or
 * number. bytes and oneof fields are not supported (the control API has none).
 */
#ifndef KAFSCALE_PBJSON_H
#define KAFSCALE_PBJSON_H

#include <stddef.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* A new JSON object for m (caller json_decref()s). NULL out of memory. */
json_t *pbjson_from_message(const ProtobufCMessage *m);

/* A new message of descriptor d from the JSON object j: unknown keys, wrong
 * types and out-of-range numbers are refused (NULL, reason in err). Free the
 * result with protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *pbjson_to_message(const ProtobufCMessageDescriptor *d, const json_t *j, char *err, size_t errsz);

#endif
