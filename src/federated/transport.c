/* transport.c: what every federated transport shares: sending through the
 * observer and the byte count, receiving an expected buffer, and the seeded
 * draws of a round (which clients, each client's task seed). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metalearn/federated.h"

int64_t ml_fed_buffer_bytes(const ml_fed_buffer *b) {
    return b->kind == ML_FED_TENSOR ? b->numel * (int64_t)sizeof(float) : (int64_t)sizeof(double);
}

ml_status ml_fed_send(ml_fed_transport *t, int from, int to, const ml_fed_buffer *b, char *err, size_t errlen) {
    if (t->observe) t->observe(t->observe_user, from, to, b);
    ml_status s = t->send(t->impl, from, to, b, err, errlen);
    if (!s) t->bytes_sent += ml_fed_buffer_bytes(b);
    return s;
}

static void shape_text(const ml_fed_buffer *b, char *buf, size_t len) {
    buf[0] = 0;
    for (int d = 0; d < b->ndim; d++)
        snprintf(buf + strlen(buf), len - strlen(buf), d ? ",%lld" : "%lld", (long long)b->shape[d]);
}

static const char *endpoint(int e, char *buf, size_t len) {
    if (e == ML_FED_SERVER) snprintf(buf, len, "the server");
    else snprintf(buf, len, "client %d", e);
    return buf;
}

ml_status ml_fed_recv_expect(ml_fed_transport *t, int from, int to, ml_fed_buffer *want, char *err, size_t errlen) {
    ml_fed_buffer got = {.data = want->kind == ML_FED_TENSOR ? want->data : NULL,
                         .numel = want->kind == ML_FED_TENSOR ? want->numel : 0};
    char a[32], b[32];
    ml_status s = t->recv(t->impl, from, to, &got, err, errlen);
    if (s) return s;
    int same = got.kind == want->kind && !strcmp(got.name, want->name);
    if (same && want->kind == ML_FED_TENSOR) {
        same = got.ndim == want->ndim && got.numel == want->numel;
        for (int d = 0; same && d < want->ndim; d++) same = got.shape[d] == want->shape[d];
    }
    if (!same) {
        char gs[64], ws[64];
        shape_text(&got, gs, sizeof gs);
        shape_text(want, ws, sizeof ws);
        snprintf(err, errlen, "%s transport: %s sent '%s' [%s] where %s expected '%s' [%s]", t->name,
                 endpoint(from, a, sizeof a), got.name, gs, endpoint(to, b, sizeof b), want->name, ws);
        return ML_ERR_STATE;
    }
    if (want->kind == ML_FED_SCALAR) want->value = got.value;
    return ML_OK;
}

void ml_fed_transport_close(ml_fed_transport *t) {
    if (!t) return;
    if (t->close && t->impl) t->close(t->impl);
    memset(t, 0, sizeof *t);
}

/* splitmix64 of a mix of the inputs: independent streams per (round, client). */
static uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t ml_fed_client_seed(uint64_t seed, int round, int client) {
    return mix(mix(mix(seed ^ 0x666564636c69ULL) + (uint64_t)round) + (uint64_t)(client + 1));
}

int ml_fed_sample_clients(uint64_t seed, int round, int clients, double fraction, int *out) {
    /* The tolerance absorbs a float fraction's rounding (0.6f * 5 = 3.0000001). */
    int m = (int)ceil(fraction * clients - 1e-5);
    if (m < 1) m = 1;
    if (m > clients) m = clients;
    /* A flag per client (no allocation): take m by selection sampling
     * (Knuth's algorithm S), which yields them in ascending order. */
    ml_rng rng;
    ml_rng_seed(&rng, mix(mix(seed ^ 0x6665647365ULL) + (uint64_t)round));
    int taken = 0;
    for (int k = 0; k < clients && taken < m; k++)
        if (ml_rng_below(&rng, (uint32_t)(clients - k)) < (uint32_t)(m - taken)) out[taken++] = k;
    return m;
}
