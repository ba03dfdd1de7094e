/* transport_local.c: the in-process transport: every client runs in this
 * process; a buffer sent is copied into the FIFO mailbox of its (from, to)
 * pair and copied out by recv. The copies keep the semantics of a real
 * network: the receiver never sees the sender's memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/federated.h"

typedef struct msg {
    struct msg *next;
    ml_fed_buffer b; /* b.data points after the struct */
} msg;

typedef struct local_impl {
    int clients;
    msg **head, **tail; /* [(clients + 1)^2] by (from + 1) * (clients + 1) + (to + 1) */
} local_impl;

static int slot(const local_impl *l, int from, int to) { return (from + 1) * (l->clients + 1) + (to + 1); }

static int local_is_server(void *impl) {
    (void)impl;
    return 1;
}

static int local_hosts_client(void *impl, int client) {
    const local_impl *l = impl;
    return client >= 0 && client < l->clients;
}

static int bad_endpoint(const local_impl *l, int e) { return e < ML_FED_SERVER || e >= l->clients; }

static ml_status local_send(void *impl, int from, int to, const ml_fed_buffer *b, char *err, size_t errlen) {
    local_impl *l = impl;
    if (bad_endpoint(l, from) || bad_endpoint(l, to) || from == to) {
        snprintf(err, errlen, "local transport: no link from %d to %d (%d clients)", from, to, l->clients);
        return ML_ERR_ARG;
    }
    size_t bytes = b->kind == ML_FED_TENSOR ? (size_t)b->numel * sizeof(float) : 0;
    msg *m = ml_malloc(sizeof *m + (bytes ? bytes : 1));
    if (!m) {
        snprintf(err, errlen, "local transport: out of memory for '%s'", b->name);
        return ML_ERR_NOMEM;
    }
    m->next = NULL;
    m->b = *b;
    m->b.data = bytes ? (float *)(m + 1) : NULL;
    if (bytes) memcpy(m->b.data, b->data, bytes);
    int s = slot(l, from, to);
    if (l->tail[s]) l->tail[s]->next = m;
    else l->head[s] = m;
    l->tail[s] = m;
    return ML_OK;
}

static ml_status local_recv(void *impl, int from, int to, ml_fed_buffer *b, char *err, size_t errlen) {
    local_impl *l = impl;
    if (bad_endpoint(l, from) || bad_endpoint(l, to)) {
        snprintf(err, errlen, "local transport: no link from %d to %d (%d clients)", from, to, l->clients);
        return ML_ERR_ARG;
    }
    int s = slot(l, from, to);
    msg *m = l->head[s];
    if (!m) { /* in one process a missing message is a logic error, never a wait */
        snprintf(err, errlen, "local transport: nothing sent from %d to %d", from, to);
        return ML_ERR_STATE;
    }
    if (m->b.kind == ML_FED_TENSOR && (m->b.numel > b->numel || !b->data)) {
        snprintf(err, errlen, "local transport: '%s' has %lld values, room for %lld", m->b.name, (long long)m->b.numel,
                 (long long)b->numel);
        return ML_ERR_STATE;
    }
    l->head[s] = m->next;
    if (!m->next) l->tail[s] = NULL;
    float *room = b->data;
    *b = m->b;
    b->data = room;
    if (m->b.kind == ML_FED_TENSOR) memcpy(room, m->b.data, (size_t)m->b.numel * sizeof(float));
    ml_free(m);
    return ML_OK;
}

static void local_close(void *impl) {
    local_impl *l = impl;
    int n = (l->clients + 1) * (l->clients + 1);
    for (int s = 0; s < n; s++)
        for (msg *m = l->head[s], *next; m; m = next) {
            next = m->next;
            ml_free(m);
        }
    ml_free(l->head);
    ml_free(l->tail);
    ml_free(l);
}

ml_status ml_fed_transport_local(ml_fed_transport *t, int clients, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    if (clients < 1 || clients > 4096) {
        snprintf(err, errlen, "local transport: %d clients (expected 1 to 4096)", clients);
        return ML_ERR_ARG;
    }
    local_impl *l = ml_calloc(1, sizeof *l);
    size_t n = (size_t)(clients + 1) * (size_t)(clients + 1);
    if (l) {
        l->clients = clients;
        l->head = ml_calloc(n, sizeof *l->head);
        l->tail = ml_calloc(n, sizeof *l->tail);
    }
    if (!l || !l->head || !l->tail) {
        if (l) {
            ml_free(l->head);
            ml_free(l->tail);
            ml_free(l);
        }
        snprintf(err, errlen, "local transport: out of memory for %d clients", clients);
        return ML_ERR_NOMEM;
    }
    *t = (ml_fed_transport){.impl = l,
                            .name = "local",
                            .is_server = local_is_server,
                            .hosts_client = local_hosts_client,
                            .send = local_send,
                            .recv = local_recv,
                            .close = local_close};
    return ML_OK;
}
