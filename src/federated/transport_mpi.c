/* transport_mpi.c: federated clients on the ranks of an mpirun job (see
 * metalearn/federated.h and docs/federated.md). Rank 0 is the server; client
 * k runs on rank 1 + k % (size - 1). Every buffer is one message: the header
 * of federated/wire.h, then the floats. Sends are non-blocking (the server
 * hands its tensors to every client of a round before it receives any
 * reply), held until flush; a receive probes the message's size, reads it
 * whole and lets the wire decoder check it before a byte reaches the
 * receiver's buffer. Tags tell the links apart: 2k for server -> client k,
 * 2k + 1 for client k -> server; each pair also numbers its messages, and a
 * message out of order is an error. With one process: the local transport. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federated/wire.h"
#include "metalearn/dist.h"
#include "metalearn/federated.h"

int ml_fed_mpi_rank_of_client(int client, int size) { return size > 1 ? 1 + client % (size - 1) : 0; }

#ifdef ML_HAVE_MPI
#include <mpi.h>

typedef struct pending {
    MPI_Request req;
    void *bytes;
} pending;

typedef struct mpi_impl {
    int rank, size, clients;
    uint32_t *seq_out, *seq_in; /* [2 * clients]: by link (2k down, 2k + 1 up) */
    pending *sent;
    int n_sent, cap_sent;
} mpi_impl;

static int rank_of(const mpi_impl *m, int e) {
    return e == ML_FED_SERVER ? 0 : ml_fed_mpi_rank_of_client(e, m->size);
}

static int mpi_is_server(void *impl) { return ((mpi_impl *)impl)->rank == 0; }

static int mpi_hosts_client(void *impl, int client) {
    const mpi_impl *m = impl;
    return client >= 0 && client < m->clients && rank_of(m, client) == m->rank;
}

/* The link of a (from, to) pair: clients talk to the server only. */
static int link_of(const mpi_impl *m, int from, int to, char *err, size_t errlen) {
    int client = from == ML_FED_SERVER ? to : from;
    if ((from == ML_FED_SERVER) == (to == ML_FED_SERVER) || client < 0 || client >= m->clients) {
        snprintf(err, errlen, "mpi transport: no link from %d to %d (%d clients; clients talk to the server only)",
                 from, to, m->clients);
        return -1;
    }
    return 2 * client + (to == ML_FED_SERVER);
}

static void wait_sent(mpi_impl *m) {
    for (int i = 0; i < m->n_sent; i++) {
        MPI_Wait(&m->sent[i].req, MPI_STATUS_IGNORE);
        free(m->sent[i].bytes);
    }
    m->n_sent = 0;
}

static ml_status mpi_send(void *impl, int from, int to, const ml_fed_buffer *b, char *err, size_t errlen) {
    mpi_impl *m = impl;
    int link = link_of(m, from, to, err, errlen);
    if (link < 0) return ML_ERR_ARG;
    if (rank_of(m, from) != m->rank) {
        snprintf(err, errlen, "mpi transport: rank %d sends as endpoint %d, which rank %d hosts", m->rank, from,
                 rank_of(m, from));
        return ML_ERR_STATE;
    }
    size_t len = ml__fed_wire_bytes(b);
    if (len > INT_MAX) {
        snprintf(err, errlen, "mpi transport: '%s' (%lld values) exceeds one message", b->name, (long long)b->numel);
        return ML_ERR_ARG;
    }
    if (m->n_sent == m->cap_sent) {
        int cap = m->cap_sent ? 2 * m->cap_sent : 64;
        pending *grown = realloc(m->sent, (size_t)cap * sizeof *grown);
        if (!grown) goto oom;
        m->sent = grown;
        m->cap_sent = cap;
    }
    void *bytes = malloc(len);
    if (!bytes) goto oom;
    ml__fed_wire_route route = {from, to, m->seq_out[link]++};
    ml__fed_wire_encode(b, &route, bytes);
    pending *p = &m->sent[m->n_sent++];
    p->bytes = bytes;
    MPI_Isend(bytes, (int)len, MPI_BYTE, rank_of(m, to), link, MPI_COMM_WORLD, &p->req);
    return ML_OK;
oom:
    snprintf(err, errlen, "mpi transport: out of memory for '%s'", b->name);
    return ML_ERR_NOMEM;
}

static ml_status mpi_recv(void *impl, int from, int to, ml_fed_buffer *b, char *err, size_t errlen) {
    mpi_impl *m = impl;
    int link = link_of(m, from, to, err, errlen);
    if (link < 0) return ML_ERR_ARG;
    if (rank_of(m, to) != m->rank) {
        snprintf(err, errlen, "mpi transport: rank %d receives for endpoint %d, which rank %d hosts", m->rank, to,
                 rank_of(m, to));
        return ML_ERR_STATE;
    }
    MPI_Status st;
    int len = 0;
    MPI_Probe(rank_of(m, from), link, MPI_COMM_WORLD, &st);
    MPI_Get_count(&st, MPI_BYTE, &len);
    void *bytes = malloc(len > 0 ? (size_t)len : 1);
    if (!bytes) {
        snprintf(err, errlen, "mpi transport: out of memory for a message of %d bytes", len);
        return ML_ERR_NOMEM;
    }
    MPI_Recv(bytes, len, MPI_BYTE, rank_of(m, from), link, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    ml__fed_wire_route route;
    char why[512];
    ml_status s = ml__fed_wire_decode(bytes, (size_t)(len > 0 ? len : 0), b, b->data ? b->numel : 0, &route, why,
                                      sizeof why);
    free(bytes);
    if (s) {
        snprintf(err, errlen, "mpi transport: from rank %d: %s", rank_of(m, from), why);
        return s;
    }
    uint32_t want = m->seq_in[link]++;
    if (route.from != from || route.to != to || route.seq != want) {
        snprintf(err, errlen, "mpi transport: rank %d expected message %u from %d to %d, got message %u from %d to %d",
                 m->rank, want, from, to, route.seq, route.from, route.to);
        return ML_ERR_STATE;
    }
    return ML_OK;
}

static void mpi_flush(void *impl) { wait_sent(impl); }

static void mpi_close(void *impl) {
    mpi_impl *m = impl;
    wait_sent(m);
    free(m->sent);
    free(m->seq_out);
    free(m->seq_in);
    free(m);
}
#endif

ml_status ml_fed_transport_mpi(ml_fed_transport *t, int clients, char *err, size_t errlen) {
    if (ml_dist_size() == 1) return ml_fed_transport_local(t, clients, err, errlen);
#ifdef ML_HAVE_MPI
    memset(t, 0, sizeof *t);
    if (clients < 1 || clients > 4096) {
        snprintf(err, errlen, "mpi transport: %d clients (expected 1 to 4096)", clients);
        return ML_ERR_ARG;
    }
    mpi_impl *m = calloc(1, sizeof *m);
    if (m) {
        m->rank = ml_dist_rank();
        m->size = ml_dist_size();
        m->clients = clients;
        m->seq_out = calloc((size_t)clients * 2, sizeof *m->seq_out);
        m->seq_in = calloc((size_t)clients * 2, sizeof *m->seq_in);
    }
    if (!m || !m->seq_out || !m->seq_in) {
        if (m) {
            free(m->seq_out);
            free(m->seq_in);
            free(m);
        }
        snprintf(err, errlen, "mpi transport: out of memory for %d clients", clients);
        return ML_ERR_NOMEM;
    }
    *t = (ml_fed_transport){.impl = m,
                            .name = "mpi",
                            .is_server = mpi_is_server,
                            .hosts_client = mpi_hosts_client,
                            .send = mpi_send,
                            .recv = mpi_recv,
                            .close = mpi_close,
                            .flush = mpi_flush};
    return ML_OK;
#else
    snprintf(err, errlen, "mpi transport: %d processes, but this build has no MPI", ml_dist_size());
    return ML_ERR_STATE;
#endif
}
