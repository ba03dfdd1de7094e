/* test_federated.c: federated meta-learning (metalearn/federated.h) through
 * the run API: the seeded client draws, the in-process transport, a
 * sinusoid run that gives the same bits for one seed whatever the thread
 * count, per-round checkpoints that resume bit for bit, the privacy
 * boundary (every buffer that crosses the transport recorded: from a client
 * only the model's named tensors, in its shapes, and the scalars count and
 * loss), Omniglot clients by alphabet, and bad settings refused before the
 * first round with one-line messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/dist.h"
#include "metalearn/federated.h"
#include "metalearn/io.h"
#include "metalearn/run.h"
#include "ml_test.h"

static char g_tmp[1024];

static void fed_config(ml_run_config *c, const char *name, char *out, size_t len) {
    snprintf(out, len, "%s/fed_%s", g_tmp, name);
    ml_test_sine_run_config(c, out);
    c->meta_batch = 3;
    c->federated = 1;
    c->clients = 5;
    c->client_fraction = 0.6f;
    c->local_iters = 2;
    c->rounds = 6;
    c->log_every = 1;
    c->checkpoint_every = 1;
    c->seed = 7;
    c->overwrite = 1;
    ml_run_config_resolve(c);
}

static int same_checkpoint(const char *run_a, const char *run_b) {
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/checkpoint.safetensors", run_a);
    snprintf(b, sizeof b, "%s/checkpoint.safetensors", run_b);
    return ml_test_same_file(a, b);
}

static ml_status train(const ml_run_config *c, ml_run_mode mode, ml_fed_transport *t, char *err, size_t errlen) {
    ml_run *r;
    ml_run_open_options opt = {.transport = t};
    ml_status s = ml_run_open(&r, c, mode, &opt, err, errlen);
    if (s) return s;
    s = ml_run_train(r, NULL, err, errlen);
    ml_run_close(r);
    return s;
}

static void test_sample_clients(void) {
    int a[10], b[10];
    CHECK_INT_EQ(ml_fed_sample_clients(1, 3, 10, 0.35, a), 4); /* ceil(3.5) */
    CHECK_INT_EQ(ml_fed_sample_clients(1, 3, 10, 0.35, b), 4);
    CHECK(!memcmp(a, b, 4 * sizeof(int)));
    for (int i = 1; i < 4; i++) CHECK(a[i] > a[i - 1]);
    CHECK_INT_EQ(ml_fed_sample_clients(1, 3, 10, 1.0, a), 10);
    for (int i = 0; i < 10; i++) CHECK_INT_EQ(a[i], i);
    CHECK_INT_EQ(ml_fed_sample_clients(1, 3, 10, 1e-6, a), 1);
    int differ = 0; /* other rounds draw other clients */
    for (int round = 0; round < 8; round++) {
        ml_fed_sample_clients(1, round, 10, 0.3, b);
        ml_fed_sample_clients(1, round + 1, 10, 0.3, a);
        differ |= memcmp(a, b, 3 * sizeof(int)) != 0;
    }
    CHECK(differ);
    CHECK(ml_fed_client_seed(1, 0, 0) != ml_fed_client_seed(1, 0, 1));
    CHECK(ml_fed_client_seed(1, 0, 0) != ml_fed_client_seed(1, 1, 0));
}

static void test_local_transport(void) {
    ml_fed_transport t;
    char err[512];
    CHECK_INT_EQ(ml_fed_transport_local(&t, 0, err, sizeof err), ML_ERR_ARG);
    CHECK_INT_EQ(ml_fed_transport_local(&t, 2, err, sizeof err), ML_OK);
    float w[6] = {1, 2, 3, 4, 5, 6}, got[6] = {0};
    ml_fed_buffer b = {.kind = ML_FED_TENSOR, .name = "w", .ndim = 2, .shape = {2, 3}, .numel = 6, .data = w};
    ml_fed_buffer s = {.kind = ML_FED_SCALAR, .name = "loss", .value = 0.5};
    CHECK_INT_EQ(ml_fed_send(&t, ML_FED_SERVER, 1, &b, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_fed_send(&t, ML_FED_SERVER, 1, &s, err, sizeof err), ML_OK);
    w[0] = 99; /* the message is a copy */
    CHECK_INT_EQ(t.bytes_sent, 6 * 4 + 8);
    ml_fed_buffer want = b;
    want.data = got;
    CHECK_INT_EQ(ml_fed_recv_expect(&t, ML_FED_SERVER, 1, &want, err, sizeof err), ML_OK);
    CHECK_NEAR(got[0], 1, 0, 0);
    CHECK_NEAR(got[5], 6, 0, 0);
    ml_fed_buffer count = {.kind = ML_FED_SCALAR, .name = "count"};
    CHECK_INT_EQ(ml_fed_recv_expect(&t, ML_FED_SERVER, 1, &count, err, sizeof err), ML_ERR_STATE);
    CHECK_STR_CONTAINS(err, "sent 'loss'");
    CHECK_INT_EQ(ml_fed_recv_expect(&t, ML_FED_SERVER, 0, &count, err, sizeof err), ML_ERR_STATE); /* nothing there */
    CHECK_INT_EQ(ml_fed_send(&t, 2, ML_FED_SERVER, &s, err, sizeof err), ML_ERR_ARG);               /* no client 2 */
    ml_fed_transport_close(&t);
}

/* The same seed gives the same checkpoint with 1 or 2 threads. */
static void test_same_seed_same_bits(void) {
    char a[1100], b[1100], err[1024];
    ml_run_config c;
    fed_config(&c, "t1", a, sizeof a);
    CHECK_INT_EQ(train(&c, ML_RUN_NEW, NULL, err, sizeof err), ML_OK);
    fed_config(&c, "t2", b, sizeof b);
    c.threads = 2;
    CHECK_INT_EQ(train(&c, ML_RUN_NEW, NULL, err, sizeof err), ML_OK);
    CHECK(same_checkpoint(a, b));
    /* and another seed gives another model */
    fed_config(&c, "s8", b, sizeof b);
    c.seed = 8;
    CHECK_INT_EQ(train(&c, ML_RUN_NEW, NULL, err, sizeof err), ML_OK);
    fprintf(stderr, "  (a difference is expected here:)\n");
    CHECK(!same_checkpoint(a, b));
}

/* Stopped after round 2 (a checkpoint per round), resumed to round 6: the
 * same bytes as the uninterrupted run; so are the log's losses. */
static void test_resume_per_round(void) {
    char a[1100], b[1100], err[1024];
    ml_run_config c;
    fed_config(&c, "t1", a, sizeof a);
    fed_config(&c, "resume", b, sizeof b);
    c.stop_at = 2;
    CHECK_INT_EQ(train(&c, ML_RUN_NEW, NULL, err, sizeof err), ML_OK);
    c.stop_at = 0;
    c.overwrite = 0;
    ml_status s = train(&c, ML_RUN_RESUME, NULL, err, sizeof err);
    CHECK_INT_EQ(s, ML_OK);
    if (s) fprintf(stderr, "  %s\n", err);
    CHECK(same_checkpoint(a, b));
    char la[1200], lb[1200];
    snprintf(la, sizeof la, "%s/log.jsonl", a);
    snprintf(lb, sizeof lb, "%s/log.jsonl", b);
    size_t na, nb;
    char *hx = ml_test_slurp(la, &na), *hy = ml_test_slurp(lb, &nb), *x = hx, *y = hy;
    CHECK(x && y);
    for (int line = 0; x && y && line < 6; line++) { /* the losses (before elapsed_s, which differs) */
        char *ex = strstr(x, ",\"elapsed_s\""), *ey = strstr(y, ",\"elapsed_s\"");
        CHECK(ex && ey && ex - x == ey - y && !memcmp(x, y, (size_t)(ex - x)));
        if (!ex || !ey) break;
        x = strchr(ex, '\n') ? strchr(ex, '\n') + 1 : ex;
        y = strchr(ey, '\n') ? strchr(ey, '\n') + 1 : ey;
    }
    free(hx);
    free(hy);
}

/* ---- the privacy boundary ------------------------------------------------------------- */

typedef struct record {
    int n, bad;
    int from_client, scalars, tensors_down;
    int64_t bytes;
    ml_safetensors *model; /* the run's checkpoint: the names and shapes that may travel */
    int ranks;             /* > 1: under mpirun, where each rank sends only as the endpoints it hosts */
    char why[512];
} record;

static void observe(void *user, int from, int to, const ml_fed_buffer *b) {
    record *r = user;
    r->n++;
    r->bytes += ml_fed_buffer_bytes(b);
    if ((from == ML_FED_SERVER) == (to == ML_FED_SERVER)) { /* client to client, or server to itself */
        snprintf(r->why, sizeof r->why, "a buffer from %d to %d", from, to);
        r->bad++;
        return;
    }
    if (r->ranks > 1 && (from == ML_FED_SERVER ? 0 : ml_fed_mpi_rank_of_client(from, r->ranks)) != ml_dist_rank()) {
        snprintf(r->why, sizeof r->why, "rank %d sent as endpoint %d", ml_dist_rank(), from);
        r->bad++;
    }
    if (b->kind == ML_FED_SCALAR) {
        if (from == ML_FED_SERVER || (strcmp(b->name, "count") && strcmp(b->name, "loss"))) {
            snprintf(r->why, sizeof r->why, "scalar '%s' from %d", b->name, from);
            r->bad++;
        }
        r->scalars++;
        return;
    }
    if (b->kind != ML_FED_TENSOR) {
        snprintf(r->why, sizeof r->why, "a buffer of kind %d", (int)b->kind);
        r->bad++;
        return;
    }
    /* A tensor must be one of the model's (or the learner's extras), in its
     * shape: never images, labels or task points. Checked against the
     * checkpoint after the run; recorded here by name and shape. */
    const ml_st_entry *e = r->model ? ml_safetensors_find(r->model, b->name) : NULL;
    int ok = e && strncmp(b->name, "optim.", 6) != 0 && e->ndim == b->ndim && e->numel == b->numel;
    for (int d = 0; ok && d < b->ndim; d++) ok = e->shape[d] == b->shape[d];
    if (!ok) {
        snprintf(r->why, sizeof r->why, "tensor '%s' (%lld values) is not a model tensor", b->name, (long long)b->numel);
        r->bad++;
    }
    if (from == ML_FED_SERVER) r->tensors_down++;
    else r->from_client++;
}

static void check_boundary(ml_run_config *c, const char *out, int rounds, int expect_clients_per_round, int n_tensors) {
    char err[1024];
    /* A first run writes the checkpoint whose tensors are the model's. */
    c->rounds = rounds;
    ml_run_config_resolve(c);
    ml_status s = train(c, ML_RUN_NEW, NULL, err, sizeof err);
    CHECK_INT_EQ(s, ML_OK);
    if (s) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
    ml_safetensors st;
    CHECK_INT_EQ(ml_safetensors_read(path, &st, err, sizeof err), ML_OK);
    record rec = {.model = &st, .ranks = ml_dist_size()};
    ml_fed_transport t;
    CHECK_INT_EQ(ml_fed_transport_mpi(&t, c->clients, err, sizeof err), ML_OK); /* one process: local */
    t.observe = observe;
    t.observe_user = &rec;
    s = train(c, ML_RUN_NEW, &t, err, sizeof err);
    CHECK_INT_EQ(s, ML_OK);
    if (s) fprintf(stderr, "  %s\n", err);
    CHECK_INT_EQ(rec.bad, 0);
    if (rec.bad) fprintf(stderr, "  privacy: %s\n", rec.why);
    CHECK_INT_EQ(t.bytes_sent, rec.bytes);
    /* Under mpirun: the server's and the clients' sends are on their own
     * ranks; the counts of the whole job add up as in one process. */
    if (rec.ranks > 1) CHECK_INT_EQ(ml_dist_rank() == 0 ? rec.from_client + rec.scalars : rec.tensors_down, 0);
    float mine[4] = {(float)rec.tensors_down, (float)rec.from_client, (float)rec.scalars, (float)rec.n}, all[4];
    ml_dist_sum_floats(mine, all, 4);
    int sent = rounds * expect_clients_per_round;
    CHECK_INT_EQ((int)all[0], sent * n_tensors);
    CHECK_INT_EQ((int)all[1], sent * n_tensors);
    CHECK_INT_EQ((int)all[2], sent * 2);
    CHECK_INT_EQ((int)all[3], sent * (2 * n_tensors + 2));
    ml_fed_transport_close(&t);
    ml_safetensors_free(&st);
}

static void test_privacy_boundary_sinusoid(void) {
    char out[1100];
    ml_run_config c;
    fed_config(&c, "privacy", out, sizeof out);
    check_boundary(&c, out, 3, 3, 6); /* ceil(0.6 * 5) clients; mlp:16,16 has 6 tensors */
    fed_config(&c, "privacy_metasgd", out, sizeof out);
    c.algo = "metasgd"; /* the learned rates alpha.NAME travel too, as named tensors */
    ml_run_config_resolve(&c);
    check_boundary(&c, out, 2, 3, 12);
}

/* ---- Omniglot: clients by alphabet ---------------------------------------------------- */

static int omniglot_spec(char *buf, size_t len) {
    char a[900], b[900];
    snprintf(a, sizeof a, "%s/omniglot/images_background_small1.zip", ml_test_data_dir());
    snprintf(b, sizeof b, "%s/omniglot/images_background_small2.zip", ml_test_data_dir());
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    int ok = f && g;
    if (f) fclose(f);
    if (g) fclose(g);
    snprintf(buf, len, "omniglot:%s,%s", a, b);
    return ok;
}

static void omniglot_config(ml_run_config *c, const char *dataset, const char *name, char *out, size_t len) {
    fed_config(c, name, out, len);
    c->algo = "protonet";
    c->dataset = dataset;
    c->model = "cnn4:8";
    c->ways = 5;
    c->shots = 1;
    c->query = 2;
    c->meta_batch = 1;
    c->clients = 8;
    c->client_fraction = 1;
    c->local_iters = 1;
    c->rotations = 0;
    c->eval_steps = NULL;
    ml_run_config_resolve(c);
}

static void test_omniglot_alphabets(void) {
    char ds[2000], out[1100];
    if (!omniglot_spec(ds, sizeof ds)) {
        ml_test_skip("Omniglot images_background_small zips absent under ML_DATA_DIR");
        return;
    }
    ml_run_config c;
    omniglot_config(&c, ds, "omniglot", out, sizeof out);
    check_boundary(&c, out, 1, 8, 4 * 4); /* cnn4: 4 blocks of conv w, b, bn w, b */
    /* Split by alphabet: 8 alphabets, 6 train -> 6 clients at most. */
    omniglot_config(&c, ds, "omniglot_alpha", out, sizeof out);
    c.split_by = "alphabet";
    c.split = "0.75,0,0.25";
    c.clients = 7;
    char err[1024];
    CHECK_INT_EQ(train(&c, ML_RUN_NEW, NULL, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "--clients 7: the training split of");
    CHECK_STR_CONTAINS(err, "has only 6 alphabets");
    CHECK(!strchr(err, '\n'));
    c.clients = 6;
    c.rounds = 1;
    ml_run_config_resolve(&c);
    CHECK_INT_EQ(train(&c, ML_RUN_NEW, NULL, err, sizeof err), ML_OK);
}

/* ---- bad settings: one line each, before the first round ------------------------------ */

static void expect_refused(ml_run_config *c, const char *needle) {
    char err[1024] = "";
    ml_run *r = NULL;
    ml_status s = ml_run_open(&r, c, ML_RUN_NEW, NULL, err, sizeof err);
    CHECK_INT_EQ(s, ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, needle);
    CHECK(!strchr(err, '\n'));
    ml_run_close(r);
}

static void test_bad_settings(void) {
    char out[1100];
    ml_run_config c;
    fed_config(&c, "bad", out, sizeof out);
    c.clients = 0;
    expect_refused(&c, "--clients 0: federated training needs at least one client");
    fed_config(&c, "bad", out, sizeof out);
    c.client_fraction = 0;
    expect_refused(&c, "--client-fraction 0: expected a fraction");
    c.client_fraction = 1.5f;
    expect_refused(&c, "--client-fraction 1.5");
    fed_config(&c, "bad", out, sizeof out);
    c.task = "linear";
    expect_refused(&c, "--task linear has no amplitude");
    fed_config(&c, "bad", out, sizeof out);
    c.federated = 0;
    expect_refused(&c, "--rounds 6: only a --federated run");
    char ds[2000];
    if (!omniglot_spec(ds, sizeof ds)) return; /* skipped above */
    omniglot_config(&c, ds, "bad", out, sizeof out);
    c.clients = 9;
    expect_refused(&c, "--clients 9: the training split of");
    omniglot_config(&c, ds, "bad", out, sizeof out);
    c.algo = "pretrain";
    ml_run_config_resolve(&c);
    expect_refused(&c, "use --algo multitask for a FedAvg baseline");
}

/* Under mpirun (tests/mpi/federated.sh): the privacy boundary with clients
 * on other ranks, each rank recording what it sends. */
static int main_mpi(int argc, char **argv) {
    char err[256];
    if (ml_dist_init(&argc, &argv, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    snprintf(g_tmp, sizeof g_tmp, "%s", argv[2]);
    ML_RUN(test_privacy_boundary_sinusoid);
    ml_options_free_strings();
    return ml_test_summary();
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--mpi")) return main_mpi(argc, argv);
    snprintf(g_tmp, sizeof g_tmp, "%s", ml_test_tmp_dir());
    ML_RUN(test_sample_clients);
    ML_RUN(test_local_transport);
    ML_RUN(test_same_seed_same_bits);
    ML_RUN(test_resume_per_round);
    ML_RUN(test_privacy_boundary_sinusoid);
    ML_RUN(test_omniglot_alphabets);
    ML_RUN(test_bad_settings);
    ml_options_free_strings();
    return ml_test_summary();
}
