/* metalearn/federated.h: federated meta-learning (`metalearn train
 * --federated`): K clients each hold a private task partition (Omniglot:
 * the training alphabets dealt to clients, non-IID; sinusoid: one amplitude
 * range per client). A round: the server sends the meta-parameters to a
 * seeded fraction of the clients, each runs --local-iters outer iterations
 * of its learner on its own tasks, sends back its meta-parameters, its
 * weight (task count) and its loss, and the server takes the weighted mean
 * (FedAvg of the meta-parameters, FedMeta style).
 *
 * What travels goes through a transport: named parameter tensors and named
 * scalars, nothing else (no images, labels or task data: the round code has
 * no way to send them). The in-process transport (ml_fed_transport_local)
 * simulates every client in the calling process; the MPI transport
 * (ml_fed_transport_mpi) hosts clients on the ranks of an mpirun job with the
 * same hooks, and gives the same bits. Every buffer sent is shown to
 * an observer (tests record them; the run counts bytes per round). */
#ifndef METALEARN_FEDERATED_H
#define METALEARN_FEDERATED_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/core.h"
#include "metalearn/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Endpoints: the server, or a client 0 .. K-1. */
#define ML_FED_SERVER (-1)

typedef enum { ML_FED_TENSOR, ML_FED_SCALAR } ml_fed_kind;

/* One buffer crossing the transport: a named float tensor (a parameter or
 * a learner's extra tensor, in the model's shape) or a named scalar ("count",
 * "loss"). */
typedef struct ml_fed_buffer {
    ml_fed_kind kind;
    char name[ML_PARAM_NAME_LEN + 16];
    int ndim;
    int64_t shape[ML_MAX_DIMS];
    int64_t numel;
    float *data;  /* tensor: numel floats (send: read; recv: written, room for numel) */
    double value; /* scalar */
} ml_fed_buffer;

/* Payload bytes of a buffer: 4 per tensor element, 8 per scalar. */
int64_t ml_fed_buffer_bytes(const ml_fed_buffer *b);

/* A transport: hooks over an implementation. Messages between one pair of
 * endpoints arrive in the order sent. */
typedef struct ml_fed_transport {
    void *impl;
    const char *name; /* "local", "mpi", ... for messages */
    /* 1 when this process plays the server (aggregates, checkpoints) */
    int (*is_server)(void *impl);
    /* 1 when this process runs client k's local training */
    int (*hosts_client)(void *impl, int client);
    ml_status (*send)(void *impl, int from, int to, const ml_fed_buffer *b, char *err, size_t errlen);
    /* The next buffer from `from` to `to`, into b: kind, name, shape and
     * value are set; a tensor's data is copied into b->data, which has room
     * for b->numel floats on entry (more is an error). */
    ml_status (*recv)(void *impl, int from, int to, ml_fed_buffer *b, char *err, size_t errlen);
    void (*close)(void *impl);
    /* Waits until every buffer this process sent has left its hands (NULL:
     * sends complete at once). Called at the end of a round. */
    void (*flush)(void *impl);
    /* Shown every buffer sent (NULL: none); the caller sets it. */
    void (*observe)(void *user, int from, int to, const ml_fed_buffer *b);
    void *observe_user;
    int64_t bytes_sent; /* payload bytes sent through ml_fed_send so far */
} ml_fed_transport;

/* Every client in this process: per-destination FIFO mailboxes holding
 * copies of the buffers. */
ml_status ml_fed_transport_local(ml_fed_transport *t, int clients, char *err, size_t errlen);
/* Clients on the processes of an mpirun job (metalearn/dist.h, started):
 * rank 0 is the server, client k runs on rank 1 + k % (size - 1). A buffer
 * travels as one message (a fixed header checked on receipt: route, order,
 * name, shape, a count never above the receiver's room; then the floats).
 * One process (no mpirun, or a build without MPI): the local transport. */
ml_status ml_fed_transport_mpi(ml_fed_transport *t, int clients, char *err, size_t errlen);
/* The rank hosting client k in a job of `size` processes (size > 1). */
int ml_fed_mpi_rank_of_client(int client, int size);
/* Closes the implementation and zeroes *t (NULL and zeroed are fine). */
void ml_fed_transport_close(ml_fed_transport *t);

/* Sends through t: shows the buffer to the observer, counts its bytes. */
ml_status ml_fed_send(ml_fed_transport *t, int from, int to, const ml_fed_buffer *b, char *err, size_t errlen);
/* Receives a buffer that must be `want` (kind and name, and a tensor's
 * shape); data lands in want->data, a scalar in want->value. A different
 * buffer is an error naming both. */
ml_status ml_fed_recv_expect(ml_fed_transport *t, int from, int to, ml_fed_buffer *want, char *err, size_t errlen);

/* Clients of a round: m = ceil(fraction * K) clamped to [1, K], drawn
 * without replacement from a generator seeded by (seed, round), in ascending
 * order into out[m]; returns m. The same seed and round give the same set,
 * wherever the clients run. */
int ml_fed_sample_clients(uint64_t seed, int round, int clients, double fraction, int *out);
/* The seed of client k's task draws in a round (its own stream per round,
 * so resuming at a round needs no generator state). */
uint64_t ml_fed_client_seed(uint64_t seed, int round, int client);

#ifdef __cplusplus
}
#endif
#endif
