/* test_dist.c: the collectives of metalearn/dist.h. Run alone (CTest: one
 * process, every call a copy or a no-op) and by tests/mpi/data_parallel.sh
 * under mpirun -np 3, where the same checks hold for every rank: slices
 * cover the items once in rank order, gathered rows arrive in item order,
 * the float sum is added in rank order (the bits of a sequential sum), the
 * agreement fails alike on every rank, point-to-point rows reach rank 0
 * from every rank, and a forked child is a job of one that never calls MPI. */
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metalearn/dist.h"
#include "ml_test.h"

static void test_slices(void) {
    int size = ml_dist_size(), covered = 0;
    for (int n = 0; n <= 7; n++) {
        for (int r = 0, next = 0; r < size; r++) {
            int lo = (int)((long long)n * r / size), hi = (int)((long long)n * (r + 1) / size);
            CHECK_INT_EQ(lo, next);
            for (int i = lo; i < hi; i++) CHECK_INT_EQ(ml_dist_owner(n, i), r);
            next = hi;
            covered += hi - lo;
        }
        int lo, hi;
        ml_dist_slice(n, &lo, &hi);
        CHECK_INT_EQ(lo, (int)((long long)n * ml_dist_rank() / size));
        CHECK_INT_EQ(hi, (int)((long long)n * (ml_dist_rank() + 1) / size));
    }
    CHECK_INT_EQ(covered, 28); /* 0 + 1 + ... + 7 */
}

static void test_gather_rows(void) {
    enum { N = 7, W = 3 };
    double rows[N][W];
    int lo, hi;
    ml_dist_slice(N, &lo, &hi);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < W; j++) rows[i][j] = i >= lo && i < hi ? 10.0 * i + j : -1;
    CHECK_INT_EQ(ml_dist_allgather_rows(rows, sizeof rows[0], N), 0);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < W; j++) CHECK(rows[i][j] == 10.0 * i + j);
    int ids[N];
    for (int i = 0; i < N; i++) ids[i] = i >= lo && i < hi ? i : -1;
    CHECK_INT_EQ(ml_dist_gather_rows(ids, sizeof ids[0], N, 0), 0);
    if (ml_dist_rank() == 0)
        for (int i = 0; i < N; i++) CHECK_INT_EQ(ids[i], i);
}

static void test_sum_in_rank_order(void) {
    /* Values whose float sum depends on the order: 1e8, then ranks' 1.0s. */
    float mine[2] = {ml_dist_rank() == 0 ? 1e8f : 1.0f, (float)(ml_dist_rank() + 1)}, sum[2];
    CHECK_INT_EQ(ml_dist_sum_floats(mine, sum, 2), 0);
    float want0 = 1e8f, want1 = 1.0f;
    for (int r = 1; r < ml_dist_size(); r++) {
        want0 += 1.0f;
        want1 += (float)(r + 1);
    }
    CHECK(sum[0] == want0);
    CHECK(sum[1] == want1);
}

static void test_broadcast_and_any(void) {
    char word[8] = "";
    if (ml_dist_rank() == 0) snprintf(word, sizeof word, "theta");
    ml_dist_broadcast(word, sizeof word, 0);
    CHECK(strcmp(word, "theta") == 0);
    CHECK_INT_EQ(ml_dist_any(0), 0);
    CHECK_INT_EQ(ml_dist_any(ml_dist_rank() == ml_dist_size() - 1), 1);
}

static void test_agree(void) {
    char err[512] = "";
    int first = 0;
    CHECK_INT_EQ(ml_dist_agree(0, "", 42, &first, err, sizeof err), 0);
    int last = ml_dist_size() - 1, mine = ml_dist_rank() == last ? -2 : 0;
    CHECK_INT_EQ(ml_dist_agree(mine, "cannot read data.zip", 42, &first, err, sizeof err), -1);
    CHECK_INT_EQ(first, -2);
    CHECK_STR_CONTAINS(err, "cannot read data.zip");
    if (ml_dist_size() > 1) {
        CHECK_STR_CONTAINS(err, "rank");
        CHECK_INT_EQ(ml_dist_agree(0, "", (uint64_t)ml_dist_rank(), &first, err, sizeof err), -1);
        CHECK_STR_CONTAINS(err, "other settings or another build");
    }
    CHECK(ml_dist_hash(0, "a", 1) != ml_dist_hash(0, "b", 1));
    CHECK(ml_dist_build_id() != 0);
}

/* Each worker sends rank 0 a row, rank 0 answers each: polls never block. */
static void test_send_poll(void) {
    enum { TAG = 77 };
    int row[2] = {ml_dist_rank(), 100 + ml_dist_rank()}, from = -1, got[2];
    if (ml_dist_size() == 1) {
        CHECK_INT_EQ(ml_dist_poll(got, sizeof got, -1, TAG, &from), 0);
        CHECK_INT_EQ(ml_dist_send(row, sizeof row, 0, TAG), -1);
        return;
    }
    struct timespec ms = {0, 1000 * 1000};
    if (ml_dist_rank() == 0) {
        int seen = 0;
        for (int waited = 0; seen < ml_dist_size() - 1 && waited < 20000; waited++) {
            if (!ml_dist_poll(got, sizeof got, -1, TAG, &from)) {
                nanosleep(&ms, NULL);
                continue;
            }
            CHECK_INT_EQ(got[0], from);
            CHECK_INT_EQ(got[1], 100 + from);
            seen++;
            int answer[2] = {-from, 0};
            CHECK_INT_EQ(ml_dist_send(answer, sizeof answer, from, TAG + 1), 0);
        }
        CHECK_INT_EQ(seen, ml_dist_size() - 1);
    } else {
        CHECK_INT_EQ(ml_dist_send(row, sizeof row, 0, TAG), 0);
        int waited = 0;
        while (!ml_dist_poll(got, sizeof got, 0, TAG + 1, &from) && waited++ < 20000) nanosleep(&ms, NULL);
        CHECK_INT_EQ(got[0], -ml_dist_rank());
        CHECK_INT_EQ(from, 0);
    }
    ml_dist_any(0); /* every rank done before the next test */
}

/* A forked child of a rank: one process, no launcher variables, and
 * ml_dist_init / exit() never touch the parent's MPI. */
static void test_detach(void) {
    pid_t pid = fork();
    if (pid == 0) {
        ml_dist_detach();
        char err[64];
        int ok = ml_dist_size() == 1 && ml_dist_rank() == 0 && !getenv("OMPI_COMM_WORLD_SIZE") &&
                 ml_dist_init(NULL, NULL, err, sizeof err) == 0 && ml_dist_size() == 1;
        exit(ok ? 0 : 1); /* atexit's ml_dist_finalize must be a no-op here */
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_INT_EQ(ml_dist_any(0), 0); /* the parent's MPI still works */
}

int main(int argc, char **argv) {
    char err[256];
    if (ml_dist_init(&argc, &argv, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    ML_RUN(test_slices);
    ML_RUN(test_gather_rows);
    ML_RUN(test_sum_in_rank_order);
    ML_RUN(test_broadcast_and_any);
    ML_RUN(test_agree);
    ML_RUN(test_send_poll);
    ML_RUN(test_detach);
    int rc = ml_test_summary();
    ml_dist_finalize();
    return rc;
}
