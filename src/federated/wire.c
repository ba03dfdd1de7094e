/* wire.c: a federated message as bytes (wire.h). Fields are copied one by
 * one (no struct padding on the wire) in the machine's byte order: every
 * rank of a job runs the same build (the start-up fingerprint checks it). */
#include "federated/wire.h"

#include <stdio.h>
#include <string.h>

#define WIRE_MAGIC 0x57464c4dU /* "MLFW" */
#define NAME_BYTES ((size_t)(ML_PARAM_NAME_LEN + 16))

enum { HEAD_BYTES = 4 + 4 + 4 + 4 + 4 + (int)NAME_BYTES + 4 + 8 * ML_MAX_DIMS + 8 + 8 };

size_t ml__fed_wire_head_bytes(void) { return HEAD_BYTES; }

size_t ml__fed_wire_bytes(const ml_fed_buffer *b) {
    return HEAD_BYTES + (b->kind == ML_FED_TENSOR ? (size_t)b->numel * sizeof(float) : 0);
}

static unsigned char *put(unsigned char *p, const void *v, size_t n) {
    memcpy(p, v, n);
    return p + n;
}

static const unsigned char *get(const unsigned char *p, void *v, size_t n) {
    memcpy(v, p, n);
    return p + n;
}

void ml__fed_wire_encode(const ml_fed_buffer *b, const ml__fed_wire_route *route, void *out) {
    unsigned char *p = out;
    uint32_t magic = WIRE_MAGIC, kind = (uint32_t)b->kind;
    int32_t ndim = b->ndim;
    char name[NAME_BYTES];
    memset(name, 0, sizeof name);
    snprintf(name, sizeof name, "%s", b->name);
    p = put(p, &magic, 4);
    p = put(p, &kind, 4);
    p = put(p, &route->from, 4);
    p = put(p, &route->to, 4);
    p = put(p, &route->seq, 4);
    p = put(p, name, NAME_BYTES);
    p = put(p, &ndim, 4);
    for (int d = 0; d < ML_MAX_DIMS; d++) {
        int64_t s = d < b->ndim ? b->shape[d] : 0;
        p = put(p, &s, 8);
    }
    int64_t numel = b->kind == ML_FED_TENSOR ? b->numel : 0;
    double value = b->kind == ML_FED_SCALAR ? b->value : 0;
    p = put(p, &numel, 8);
    p = put(p, &value, 8);
    if (numel) memcpy(p, b->data, (size_t)numel * sizeof(float));
}

ml_status ml__fed_wire_decode(const void *msg, size_t len, ml_fed_buffer *b, int64_t room, ml__fed_wire_route *route,
                              char *err, size_t errlen) {
    if (len < HEAD_BYTES) {
        snprintf(err, errlen, "federated message of %zu bytes: shorter than its %d-byte header", len, HEAD_BYTES);
        return ML_ERR_FORMAT;
    }
    const unsigned char *p = msg;
    uint32_t magic, kind;
    int32_t ndim;
    char name[NAME_BYTES];
    int64_t shape[ML_MAX_DIMS], numel;
    double value;
    p = get(p, &magic, 4);
    p = get(p, &kind, 4);
    p = get(p, &route->from, 4);
    p = get(p, &route->to, 4);
    p = get(p, &route->seq, 4);
    p = get(p, name, NAME_BYTES);
    p = get(p, &ndim, 4);
    for (int d = 0; d < ML_MAX_DIMS; d++) p = get(p, &shape[d], 8);
    p = get(p, &numel, 8);
    p = get(p, &value, 8);
    if (magic != WIRE_MAGIC) {
        snprintf(err, errlen, "federated message: bad magic 0x%08x (not a metalearn message, or another version)", magic);
        return ML_ERR_FORMAT;
    }
    if (kind != ML_FED_TENSOR && kind != ML_FED_SCALAR) {
        snprintf(err, errlen, "federated message: unknown kind %u", kind);
        return ML_ERR_FORMAT;
    }
    if (!memchr(name, 0, NAME_BYTES) || !name[0]) {
        snprintf(err, errlen, "federated message: name empty or not terminated");
        return ML_ERR_FORMAT;
    }
    for (const char *c = name; *c; c++)
        if (*c < 0x20 || *c > 0x7e) { /* names are the model's: printable, and quoted in messages below */
            snprintf(err, errlen, "federated message: name with byte 0x%02x", (unsigned char)*c);
            return ML_ERR_FORMAT;
        }
    if (ndim < 0 || ndim > ML_MAX_DIMS || (kind == ML_FED_SCALAR && ndim != 0)) {
        snprintf(err, errlen, "federated message '%s': %d dimensions", name, (int)ndim);
        return ML_ERR_FORMAT;
    }
    int64_t count = 1;
    for (int d = 0; d < ML_MAX_DIMS; d++) {
        if (d >= ndim ? shape[d] != 0 : shape[d] < 0 || (shape[d] > 0 && count > INT64_MAX / 4 / shape[d])) {
            snprintf(err, errlen, "federated message '%s': bad extent %lld of dimension %d", name, (long long)shape[d], d);
            return ML_ERR_FORMAT;
        }
        if (d < ndim) count *= shape[d];
    }
    if (kind == ML_FED_SCALAR ? numel != 0 : numel != count) {
        snprintf(err, errlen, "federated message '%s': %lld values for its shape of %lld", name, (long long)numel,
                 (long long)(kind == ML_FED_SCALAR ? 0 : count));
        return ML_ERR_FORMAT;
    }
    if (numel > room || (numel > 0 && !b->data)) {
        snprintf(err, errlen, "federated message '%s': %lld values, room for %lld", name, (long long)numel,
                 (long long)(b->data ? room : 0));
        return ML_ERR_FORMAT;
    }
    if ((size_t)(len - HEAD_BYTES) / sizeof(float) != (size_t)numel || (len - HEAD_BYTES) % sizeof(float)) {
        snprintf(err, errlen, "federated message '%s': %zu payload bytes for %lld values", name, len - HEAD_BYTES,
                 (long long)numel);
        return ML_ERR_FORMAT;
    }
    b->kind = (ml_fed_kind)kind;
    memcpy(b->name, name, NAME_BYTES);
    b->ndim = ndim;
    memcpy(b->shape, shape, sizeof shape);
    b->numel = numel;
    b->value = kind == ML_FED_SCALAR ? value : 0;
    if (numel) memcpy(b->data, p, (size_t)numel * sizeof(float));
    return ML_OK;
}
