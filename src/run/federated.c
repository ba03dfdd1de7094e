/* federated.c: a federated meta-learning run (`train --federated`, see
 * metalearn/federated.h): the clients' task partitions, checked before the
 * first round, and the round itself, written against the transport so that
 * the same code serves clients in this process or on other ranks.
 *
 * A round touches no state but the meta-parameters: which clients it
 * samples and the tasks each client draws come from generators seeded by
 * (seed, round, client), and each client's outer optimizer starts afresh.
 * So the checkpoint after a round (the meta-parameters and the iteration)
 * is all a resume needs to continue bit for bit. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/dist.h"
#include "metalearn/federated.h"
#include "run/meta_run.h"

typedef struct fed_client {
    ml_class_list classes; /* few-shot: its training classes (rotations included) */
    ml_task_family family; /* sinusoid: the run's family with this client's amplitude range */
    double weight;         /* FedAvg weight: its task count (classes held, or tasks drawn per round) */
} fed_client;

/* A meta tensor: a parameter or a learner's extra, at an offset of meta. */
typedef struct fed_tensor {
    const char *name;
    int ndim;
    int64_t shape[ML_MAX_DIMS];
    int64_t offset, numel;
} fed_tensor;

struct fed_run {
    int clients, local_iters;
    double fraction;
    uint64_t seed;
    fed_client *client;    /* [clients] */
    ml_fed_transport own;  /* the in-process transport, unless the caller gave one */
    ml_fed_transport *t;
    int *selected;         /* [clients] */
    float *global, *recv;  /* [n_meta]: the server's copy of this round's start, a client's reply */
    double *acc;           /* [n_meta] weighted sum */
    ml_meta_tensor extras[ML_META_MAX_EXTRAS];
    fed_tensor tensor[ML_MAX_PARAMS + ML_META_MAX_EXTRAS];
    int n_tensors;
    int last_clients;
    int64_t last_bytes;
    int64_t *rank_bytes; /* [job size]: each rank's payload bytes of the round */
};

void fed_free(meta_run *r) {
    fed_run *f = r->fed;
    if (!f) return;
    if (f->client)
        for (int k = 0; k < f->clients; k++) ml_class_list_free(&f->client[k].classes);
    free(f->client);
    ml_fed_transport_close(&f->own);
    free(f->selected);
    free(f->global);
    free(f->recv);
    free(f->acc);
    free(f->rank_bytes);
    free(f);
    r->fed = NULL;
}

/* Omniglot: the training alphabets in ascending order, alphabet i to client
 * i mod K, each client every training class (and rotation) of its alphabets. */
static int partition_alphabets(meta_run *r, fed_run *f, const ml_run_config *o, char *err, size_t errlen) {
    const ml_image_set *s = &r->images;
    int n_alpha = 0;
    int *client_of = malloc((size_t)(s->n_alphabets > 0 ? s->n_alphabets : 1) * sizeof(int));
    if (!client_of) goto oom;
    for (int a = 0; a < s->n_alphabets; a++) client_of[a] = -1;
    for (int i = 0; i < r->train_classes.n; i++) client_of[s->class_alphabet[r->train_classes.items[i].cls]] = 0;
    char names[512] = "";
    for (int a = 0; a < s->n_alphabets; a++)
        if (client_of[a] == 0) {
            if (n_alpha < 4)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", n_alpha ? ", " : "",
                         s->alphabet_names[a][0] ? s->alphabet_names[a] : "(one alphabet: no alphabet names)");
            client_of[a] = n_alpha++ % f->clients;
        }
    if (f->clients > n_alpha) {
        snprintf(err, errlen, "--clients %d: the training split of %s has only %d alphabet%s (%s%s); each client "
                              "holds at least one (use --clients %d or fewer)", f->clients, r->data_name, n_alpha,
                 n_alpha == 1 ? "" : "s", names, n_alpha > 4 ? ", ..." : "", n_alpha);
        free(client_of);
        return ML__RUN_USAGE;
    }
    for (int k = 0; k < f->clients; k++) {
        fed_client *c = &f->client[k];
        c->classes.items = malloc((size_t)r->train_classes.n * sizeof(ml_class_ref));
        if (!c->classes.items) goto oom;
        for (int i = 0; i < r->train_classes.n; i++) {
            ml_class_ref ref = r->train_classes.items[i];
            if (client_of[s->class_alphabet[ref.cls]] == k) c->classes.items[c->classes.n++] = ref;
        }
        c->weight = c->classes.n;
        char why[512];
        if (ml_episode_check(s, &c->classes, o->ways, o->shots + o->query, why, sizeof why)) {
            snprintf(err, errlen, "--federated: client %d's tasks (--ways %d, --shots %d + --query %d): %s", k, o->ways,
                     o->shots, o->query, why);
            free(client_of);
            return ML__RUN_USAGE;
        }
    }
    free(client_of);
    return 0;
oom:
    free(client_of);
    snprintf(err, errlen, "out of memory for the clients' class lists");
    return ML__RUN_FAIL;
}

/* Sinusoid: client k draws amplitudes in the k-th of K equal parts of [0.1, 5). */
static int partition_amplitudes(meta_run *r, fed_run *f, const ml_run_config *o, char *err, size_t errlen) {
    if (r->family.kind != ML_TASKS_SINUSOID) {
        snprintf(err, errlen, "--federated: regression clients split the sinusoid family by amplitude; --task %s "
                              "has no amplitude (use --task sinusoid or an Omniglot --dataset)", o->task);
        return ML__RUN_USAGE;
    }
    for (int k = 0; k < f->clients; k++) {
        fed_client *c = &f->client[k];
        c->family = r->family; /* a synthetic family owns no buffers: a plain copy */
        c->family.amp_min = 0.1 + 4.9 * k / f->clients;
        c->family.amp_max = 0.1 + 4.9 * (k + 1) / f->clients;
        c->weight = (double)o->local_iters * r->meta_batch;
    }
    return 0;
}

static void list_tensors(meta_run *r, fed_run *f) {
    const ml_model *m = &r->model;
    int n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ml_param_info *p = &m->params[i];
        f->tensor[n] = (fed_tensor){p->name, p->ndim, {0}, p->offset, p->numel};
        memcpy(f->tensor[n].shape, p->shape, sizeof p->shape);
        n++;
    }
    int n_extra = ml_meta_extras(&r->meta.cfg, m, f->extras);
    for (int k = 0; k < n_extra; k++) {
        const ml_meta_tensor *e = &f->extras[k];
        f->tensor[n] = (fed_tensor){e->name, e->ndim, {0}, r->meta.n + e->offset, e->numel};
        memcpy(f->tensor[n].shape, e->shape, sizeof e->shape);
        n++;
    }
    f->n_tensors = n;
}

int fed_setup(meta_run *r, const ml_run_config *o, char *err, size_t errlen) {
    if (!o->federated) {
        if (o->rounds > 0) {
            snprintf(err, errlen, "--rounds %d: only a --federated run has rounds (use --iters)", o->rounds);
            return ML__RUN_USAGE;
        }
        return 0;
    }
    if (o->clients < 1) {
        snprintf(err, errlen, "--clients %d: federated training needs at least one client", o->clients);
        return ML__RUN_USAGE;
    }
    if (!(o->client_fraction > 0 && o->client_fraction <= 1)) {
        snprintf(err, errlen, "--client-fraction %g: expected a fraction of the clients in (0, 1]", o->client_fraction);
        return ML__RUN_USAGE;
    }
    if (o->local_iters < 1) {
        snprintf(err, errlen, "--local-iters %d: a client runs at least one outer iteration per round", o->local_iters);
        return ML__RUN_USAGE;
    }
    if (ml_algo_info(r->algo)->batch_training || (ml_algo_info(r->algo)->class_head && r->fewshot)) {
        snprintf(err, errlen, "--federated: --algo %s trains one head over every training class, which no client "
                              "holds; use --algo multitask for a FedAvg baseline", o->algo);
        return ML__RUN_USAGE;
    }
    if (o->task_sampler && strcmp(o->task_sampler, "uniform")) {
        snprintf(err, errlen, "--federated: --task-sampler %s ranks every training class; clients draw their own "
                              "classes uniformly (use --task-sampler uniform)", o->task_sampler);
        return ML__RUN_USAGE;
    }
    if (r->has_task_split) {
        snprintf(err, errlen, "--federated: CSV tasks have no client partition (use --task sinusoid or Omniglot)");
        return ML__RUN_USAGE;
    }
    fed_run *f = calloc(1, sizeof *f);
    if (!f) goto oom;
    r->fed = f;
    f->clients = o->clients;
    f->local_iters = o->local_iters;
    f->fraction = o->client_fraction;
    f->seed = o->seed;
    f->client = calloc((size_t)f->clients, sizeof *f->client);
    f->selected = calloc((size_t)f->clients, sizeof *f->selected);
    f->global = malloc((size_t)r->meta.n_meta * sizeof(float));
    f->recv = malloc((size_t)r->meta.n_meta * sizeof(float));
    f->acc = malloc((size_t)r->meta.n_meta * sizeof(double));
    if (!f->client || !f->selected || !f->global || !f->recv || !f->acc) goto oom;
    int st = r->fewshot ? partition_alphabets(r, f, o, err, errlen) : partition_amplitudes(r, f, o, err, errlen);
    if (st) return st;
    list_tensors(r, f);
    f->rank_bytes = calloc((size_t)ml_dist_size(), sizeof *f->rank_bytes);
    if (!f->rank_bytes) goto oom;
    /* Under mpirun the clients run on ranks 1.. (one process: all here) */
    char why[256];
    if (ml_fed_transport_mpi(&f->own, f->clients, why, sizeof why)) {
        snprintf(err, errlen, "--federated: %s", why);
        return ML__RUN_FAIL;
    }
    f->t = &f->own;
    return 0;
oom:
    snprintf(err, errlen, "out of memory for %d federated clients", o->clients);
    return ML__RUN_FAIL;
}

void fed_use_transport(meta_run *r, ml_fed_transport *t) {
    if (r->fed && t) r->fed->t = t;
}

void fed_last_round(const meta_run *r, int *clients, int64_t *bytes) {
    *clients = r->fed ? r->fed->last_clients : 0;
    *bytes = r->fed ? r->fed->last_bytes : 0;
}

static ml_fed_buffer tensor_buffer(const fed_tensor *t, float *base) {
    ml_fed_buffer b = {.kind = ML_FED_TENSOR, .ndim = t->ndim, .numel = t->numel, .data = base + t->offset};
    snprintf(b.name, sizeof b.name, "%s", t->name);
    memcpy(b.shape, t->shape, sizeof b.shape);
    return b;
}

static ml_fed_buffer scalar_buffer(const char *name, double v) {
    ml_fed_buffer b = {.kind = ML_FED_SCALAR, .value = v};
    snprintf(b.name, sizeof b.name, "%s", name);
    return b;
}

static ml_status send_tensors(fed_run *f, int from, int to, float *base, char *err, size_t errlen) {
    for (int i = 0; i < f->n_tensors; i++) {
        ml_fed_buffer b = tensor_buffer(&f->tensor[i], base);
        ml_status s = ml_fed_send(f->t, from, to, &b, err, errlen);
        if (s) return s;
    }
    return ML_OK;
}

static ml_status recv_tensors(fed_run *f, int from, int to, float *base, char *err, size_t errlen) {
    for (int i = 0; i < f->n_tensors; i++) {
        ml_fed_buffer b = tensor_buffer(&f->tensor[i], base);
        ml_status s = ml_fed_recv_expect(f->t, from, to, &b, err, errlen);
        if (s) return s;
    }
    return ML_OK;
}

/* One client's share of a round: the meta-parameters in, E outer
 * iterations on its own tasks (drawn from its own stream), its
 * meta-parameters, count and mean loss out. Its tasks never leave here. */
static int client_round(meta_run *r, fed_run *f, int k, int round, char *err, size_t errlen) {
    ml_meta *m = &r->meta;
    char why[1024];
    if (recv_tensors(f, ML_FED_SERVER, k, m->meta, why, sizeof why)) goto fail;
    ml_optim_reset(&m->opt); /* a fresh local optimizer each round */
    m->local_steps = 1;      /* its tasks are its own: no other rank takes part */
    ml_rng rng;
    ml_rng_seed(&rng, ml_fed_client_seed(f->seed, round, k));
    fed_client *c = &f->client[k];
    double sum = 0;
    for (int e = 0; e < f->local_iters; e++) {
        double loss;
        if ((r->fewshot ? fewshot_sample_from(r, &c->classes, &rng, why, sizeof why)
                        : meta_run_sample_from(r, &c->family, &rng, why, sizeof why)) ||
            ml_meta_step(m, r->batch, r->step_tasks, &loss, why, sizeof why))
            goto fail;
        sum += loss;
    }
    m->local_steps = 0;
    ml_fed_buffer count = scalar_buffer("count", c->weight), loss = scalar_buffer("loss", sum / f->local_iters);
    if (send_tensors(f, k, ML_FED_SERVER, m->meta, why, sizeof why) ||
        ml_fed_send(f->t, k, ML_FED_SERVER, &count, why, sizeof why) ||
        ml_fed_send(f->t, k, ML_FED_SERVER, &loss, why, sizeof why))
        goto fail;
    return 0;
fail:
    m->local_steps = 0;
    snprintf(err, errlen, "round %d, client %d: %s", round + 1, k, why);
    return ML__RUN_FAIL;
}

static int run_round(meta_run *r, int round, double *loss, char *err, size_t errlen) {
    fed_run *f = r->fed;
    ml_meta *m = &r->meta;
    const int64_t n = m->n_meta;
    char why[1024];
    int n_sel = ml_fed_sample_clients(f->seed, round, f->clients, f->fraction, f->selected);
    int server = f->t->is_server(f->t->impl);
    int64_t bytes0 = f->t->bytes_sent;
    if (server) {
        memcpy(f->global, m->meta, (size_t)n * sizeof(float));
        for (int i = 0; i < n_sel; i++)
            if (send_tensors(f, ML_FED_SERVER, f->selected[i], f->global, why, sizeof why)) goto fail;
    }
    for (int i = 0; i < n_sel; i++)
        if (f->t->hosts_client(f->t->impl, f->selected[i])) {
            int st = client_round(r, f, f->selected[i], round, err, errlen);
            if (st) {
                if (server) memcpy(m->meta, f->global, (size_t)n * sizeof(float));
                return st;
            }
        }
    *loss = NAN;
    if (server) {
        /* Weighted mean in client order, in double: the same bits wherever the clients ran. */
        memset(f->acc, 0, (size_t)n * sizeof(double));
        double wsum = 0, lsum = 0;
        for (int i = 0; i < n_sel; i++) {
            int k = f->selected[i];
            ml_fed_buffer count = scalar_buffer("count", 0), closs = scalar_buffer("loss", 0);
            if (recv_tensors(f, k, ML_FED_SERVER, f->recv, why, sizeof why) ||
                ml_fed_recv_expect(f->t, k, ML_FED_SERVER, &count, why, sizeof why) ||
                ml_fed_recv_expect(f->t, k, ML_FED_SERVER, &closs, why, sizeof why))
                goto fail;
            if (!(count.value > 0) || !isfinite(count.value)) {
                snprintf(why, sizeof why, "client %d sent count %g (expected a positive number of tasks)", k, count.value);
                goto fail;
            }
            for (int64_t j = 0; j < n; j++) f->acc[j] += count.value * f->recv[j];
            wsum += count.value;
            lsum += count.value * closs.value;
        }
        for (int64_t j = 0; j < n; j++) {
            float v = (float)(f->acc[j] / wsum);
            if (!isfinite(v)) {
                memcpy(m->meta, f->global, (size_t)n * sizeof(float));
                snprintf(err, errlen, "round %d: the averaged meta-parameters are not finite (lower --outer-lr or "
                                      "--inner-lr); the meta-parameters are left as before the round", round + 1);
                return ML__RUN_FAIL;
            }
            m->meta[j] = v;
        }
        *loss = lsum / wsum;
    }
    /* The clients' optimizer state is theirs and starts afresh each round:
     * none is kept, so the checkpoint is the same wherever the clients ran. */
    ml_optim_reset(&m->opt);
    f->last_clients = n_sel;
    f->last_bytes = f->t->bytes_sent - bytes0;
    return 0;
fail:
    if (server) memcpy(m->meta, f->global, (size_t)n * sizeof(float));
    snprintf(err, errlen, "round %d: %s", round + 1, why);
    return ML__RUN_FAIL;
}

/* Under mpirun: the server's new meta-parameters and the round's loss to
 * every rank (the next round's clients start from the server's message, but
 * validation and the final evaluation split their tasks over all ranks), and
 * the payload bytes of every rank summed. */
static void share_round(meta_run *r, fed_run *f, double *loss) {
    ml_dist_broadcast(r->meta.meta, (size_t)r->meta.n_meta * sizeof(float), 0);
    ml_dist_broadcast(loss, sizeof *loss, 0);
    f->rank_bytes[ml_dist_rank()] = f->last_bytes;
    ml_dist_allgather_rows(f->rank_bytes, sizeof *f->rank_bytes, ml_dist_size());
    f->last_bytes = 0;
    for (int i = 0; i < ml_dist_size(); i++) f->last_bytes += f->rank_bytes[i];
}

int fed_round(meta_run *r, int round, double *loss, char *err, size_t errlen) {
    fed_run *f = r->fed;
    int st = run_round(r, round, loss, err, errlen);
    if (f->t->flush) f->t->flush(f->t->impl);
    if (ml_dist_size() == 1) return st;
    /* A rank that fails mid-round leaves others waiting for its messages:
     * it ends the job, naming itself (the last checkpoint stays good). */
    if (st) ml_dist_abort(err, 1);
    share_round(r, f, loss);
    return 0;
}
