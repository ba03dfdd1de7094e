/* wire.h: the bytes of one federated message between processes (the MPI
 * transport): a fixed-size header, then the tensor's floats. The decoder is
 * a reader of outside data (another process, perhaps another binary): it
 * checks every header field before anything is copied, and never writes
 * more than the receiver's room (tests/fuzz/fuzz_fed_wire.c). */
#ifndef ML_FEDERATED_WIRE_H
#define ML_FEDERATED_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/federated.h"

/* Who sent a message to whom, and its place in that pair's sequence. */
typedef struct ml__fed_wire_route {
    int32_t from, to; /* endpoints: ML_FED_SERVER or a client */
    uint32_t seq;     /* 0, 1, 2 ... per (from, to) pair */
} ml__fed_wire_route;

/* Header bytes (magic, kind, route, name, ndim, shape, numel, value). */
size_t ml__fed_wire_head_bytes(void);
/* Bytes of the whole message of b. */
size_t ml__fed_wire_bytes(const ml_fed_buffer *b);
/* Writes b's message into out (ml__fed_wire_bytes(b) bytes). */
void ml__fed_wire_encode(const ml_fed_buffer *b, const ml__fed_wire_route *route, void *out);
/* Reads a message of len bytes into b (kind, name, shape, numel, value) and
 * route; a tensor's floats go to b->data, which has room for `room` floats
 * (more is an error). Any malformed field: an error naming it, b->data
 * untouched. */
ml_status ml__fed_wire_decode(const void *msg, size_t len, ml_fed_buffer *b, int64_t room, ml__fed_wire_route *route,
                              char *err, size_t errlen);

#endif
