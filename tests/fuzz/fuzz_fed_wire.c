/* fuzz_fed_wire.c: a federated message as the MPI transport receives it
 * (src/federated/wire.c). Input: 2 bytes of receiver room (floats, little
 * endian), then the message. A message the decoder accepts must fit the room
 * and re-encode to a message that decodes to the same buffer. Built without
 * MPI: the decoder is the whole reader. */
#include "fuzz_util.h"

#include "federated/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > (1u << 20)) return 0;
    int64_t room = data[0] | (int64_t)data[1] << 8;
    float *floats = malloc((size_t)(room ? room : 1) * sizeof(float));
    ml_fed_buffer b = {.data = room ? floats : NULL, .numel = room};
    ml__fed_wire_route route;
    char err[512] = "";
    if (ml__fed_wire_decode(data + 2, size - 2, &b, room, &route, err, sizeof err) != ML_OK) {
        if (!err[0] || strchr(err, '\n')) abort();
        free(floats);
        return 0;
    }
    if (b.numel > room || b.ndim < 0 || b.ndim > ML_MAX_DIMS || !memchr(b.name, 0, sizeof b.name)) abort();
    size_t len = ml__fed_wire_bytes(&b);
    if (len != size - 2) abort();
    void *again = malloc(len);
    ml__fed_wire_encode(&b, &route, again);
    float *floats2 = malloc((size_t)(room ? room : 1) * sizeof(float));
    ml_fed_buffer c = {.data = room ? floats2 : NULL, .numel = room};
    ml__fed_wire_route route2;
    if (ml__fed_wire_decode(again, len, &c, room, &route2, err, sizeof err) != ML_OK) abort();
    if (c.kind != b.kind || strcmp(c.name, b.name) || c.numel != b.numel || c.ndim != b.ndim ||
        memcmp(c.shape, b.shape, sizeof c.shape) || memcmp(&route, &route2, sizeof route) ||
        (b.numel && memcmp(floats, floats2, (size_t)b.numel * sizeof(float))))
        abort();
    if (b.kind == ML_FED_SCALAR && memcmp(&b.value, &c.value, sizeof b.value)) abort();
    free(again);
    free(floats2);
    free(floats);
    return 0;
}
