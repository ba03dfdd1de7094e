/* dist.c: the job's processes (metalearn/dist.h). With ML_HAVE_MPI the
 * collectives are Open MPI's; without it, or when the process was not
 * launched by mpirun, the job is one process and they reduce to copies. */
#define _GNU_SOURCE /* dladdr: the file this code was loaded from (build id) */
#include "metalearn/dist.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/core.h"

#ifdef ML_HAVE_MPI
#include <mpi.h>
#endif

static int g_started; /* MPI_Init was called by us */
static int g_detached; /* a forked child: MPI is the parent's */
static int g_rank, g_size = 1;
static double g_bytes, g_seconds;

int ml_dist_built_with_mpi(void) {
#ifdef ML_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int ml_dist_rank(void) { return g_rank; }
int ml_dist_size(void) { return g_size; }


#ifdef ML_HAVE_MPI
/* Launched by mpirun (or another PMIx launcher): then MPI_Init connects to it;
 * otherwise Open MPI would start a singleton runtime we have no use for. */
static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}
#endif

int ml_dist_init(int *argc, char ***argv, char *err, size_t errlen) {
#ifdef ML_HAVE_MPI
    if (g_started || g_detached || !launched_by_mpirun()) return 0;
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            snprintf(err, errlen, "MPI failed to start");
            return -1;
        }
        atexit(ml_dist_finalize);
    }
    g_started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
#else
    (void)argc, (void)argv;
    /* N copies of a one-process build would each train and write the same run folder */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1) {
        snprintf(err, errlen, "started by mpirun with %s processes, but this metalearn was built without MPI "
                              "(install libopenmpi-dev and rebuild with cmake -DML_MPI=ON)", n);
        return -1;
    }
#endif
    return 0;
}

void ml_dist_finalize(void) {
#ifdef ML_HAVE_MPI
    int done = 0;
    if (g_started && (MPI_Finalized(&done), !done)) MPI_Finalize();
#endif
    g_started = 0;
    g_rank = 0;
    g_size = 1;
}

void ml_dist_detach(void) {
    g_detached = 1;
    g_started = 0; /* so ml_dist_finalize (atexit) leaves MPI alone */
    g_rank = 0;
    g_size = 1;
    static const char *const launcher[] = {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
                                            "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof launcher / sizeof launcher[0]; i++) unsetenv(launcher[i]);
}

int ml_dist_node_size(void) {
    const char *n = g_size > 1 ? getenv("OMPI_COMM_WORLD_LOCAL_SIZE") : NULL;
    int k = n ? atoi(n) : 1;
    return k >= 1 && k <= g_size ? k : 1;
}

void ml_dist_slice(int n, int *lo, int *hi) {
    *lo = (int)((int64_t)n * g_rank / g_size);
    *hi = (int)((int64_t)n * (g_rank + 1) / g_size);
}

int ml_dist_owner(int n, int item) {
    for (int r = 0; r < g_size; r++)
        if (item < (int)((int64_t)n * (r + 1) / g_size)) return r;
    return g_size - 1;
}

void ml_dist_stats(double *bytes, double *seconds) {
    if (bytes) *bytes = g_bytes;
    if (seconds) *seconds = g_seconds;
}

void ml_dist_stats_reset(void) { g_bytes = g_seconds = 0; }

#ifdef ML_HAVE_MPI
/* Counts and offsets of every rank's slice of n rows, in rows. */
static int *slices(int n, int **displs) {
    int *counts = malloc(2 * sizeof(int) * (size_t)g_size);
    if (!counts) return NULL;
    *displs = counts + g_size;
    for (int r = 0; r < g_size; r++) {
        (*displs)[r] = (int)((int64_t)n * r / g_size);
        counts[r] = (int)((int64_t)n * (r + 1) / g_size) - (*displs)[r];
    }
    return counts;
}

static int gather(void *buf, size_t row_bytes, int n, int root, int all) {
    if (g_size == 1 || n < 1) return 0;
    if (row_bytes > (size_t)2147483647) return -1;
    MPI_Datatype row;
    int *displs, *counts = slices(n, &displs);
    if (!counts) return -1;
    double t0 = ml_now();
    MPI_Type_contiguous((int)row_bytes, MPI_BYTE, &row);
    MPI_Type_commit(&row);
    int mine = counts[g_rank];
    char *own = (char *)buf + (size_t)displs[g_rank] * row_bytes;
    if (all) MPI_Allgatherv(MPI_IN_PLACE, 0, row, buf, counts, displs, row, MPI_COMM_WORLD);
    else if (g_rank == root) MPI_Gatherv(MPI_IN_PLACE, 0, row, buf, counts, displs, row, root, MPI_COMM_WORLD);
    else MPI_Gatherv(own, mine, row, NULL, NULL, NULL, row, root, MPI_COMM_WORLD);
    MPI_Type_free(&row);
    /* payload: what this rank sent and received */
    if (all || g_rank != root) g_bytes += (double)mine * (double)row_bytes;
    if (all || g_rank == root) g_bytes += (double)(n - mine) * (double)row_bytes;
    g_seconds += ml_now() - t0;
    free(counts);
    return 0;
}
#endif

int ml_dist_gather_rows(void *buf, size_t row_bytes, int n, int root) {
#ifdef ML_HAVE_MPI
    return gather(buf, row_bytes, n, root, 0);
#else
    (void)buf, (void)row_bytes, (void)n, (void)root;
    return 0;
#endif
}

int ml_dist_allgather_rows(void *buf, size_t row_bytes, int n) {
#ifdef ML_HAVE_MPI
    return gather(buf, row_bytes, n, 0, 1);
#else
    (void)buf, (void)row_bytes, (void)n;
    return 0;
#endif
}

void ml_dist_broadcast(void *buf, size_t bytes, int root) {
#ifdef ML_HAVE_MPI
    if (g_size == 1 || bytes == 0) return;
    double t0 = ml_now();
    /* in pieces of at most 1 GiB: MPI counts are ints */
    for (size_t off = 0; off < bytes; off += (size_t)1 << 30) {
        size_t len = bytes - off < (size_t)1 << 30 ? bytes - off : (size_t)1 << 30;
        MPI_Bcast((char *)buf + off, (int)len, MPI_BYTE, root, MPI_COMM_WORLD);
    }
    g_bytes += g_rank == root ? (double)bytes * (g_size - 1) : (double)bytes;
    g_seconds += ml_now() - t0;
#else
    (void)buf, (void)bytes, (void)root;
#endif
}

int ml_dist_sum_floats(const float *mine, float *sum, int64_t n) {
    if (g_size == 1 || n == 0) {
        if (sum != mine) memmove(sum, mine, (size_t)n * sizeof(float));
        return 0;
    }
#ifdef ML_HAVE_MPI
    /* Gathered to rank 0 and added there in rank order, then broadcast: an
     * MPI_Allreduce may add in any order (and differently per run). */
    float *all = g_rank == 0 ? malloc((size_t)n * (size_t)g_size * sizeof(float)) : NULL;
    int ok = g_rank != 0 || all != NULL;
    if (ml_dist_any(!ok)) { /* some rank out of memory: all fail */
        free(all);
        return -1;
    }
    if (n > 2147483647) {
        free(all);
        return -1;
    }
    double t0 = ml_now();
    MPI_Gather(mine, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    g_bytes += g_rank == 0 ? (double)n * 4 * (g_size - 1) : (double)n * 4;
    g_seconds += ml_now() - t0;
    if (g_rank == 0) {
        for (int64_t j = 0; j < n; j++) {
            float s = all[j];
            for (int r = 1; r < g_size; r++) s += all[(int64_t)r * n + j];
            sum[j] = s;
        }
        free(all);
    }
    ml_dist_broadcast(sum, (size_t)n * sizeof(float), 0);
    return 0;
#else
    return 0;
#endif
}

int ml_dist_any(int flag) {
#ifdef ML_HAVE_MPI
    if (g_size == 1) return flag != 0;
    int in = flag != 0, out = 0;
    double t0 = ml_now();
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    g_bytes += 2 * sizeof(int);
    g_seconds += ml_now() - t0;
    return out;
#else
    return flag != 0;
#endif
}

int ml_dist_send(const void *buf, size_t bytes, int dest, int tag) {
#ifdef ML_HAVE_MPI
    if (g_size == 1 || dest < 0 || dest >= g_size || tag < 0 || bytes > (size_t)2147483647) return -1;
    double t0 = ml_now();
    int rc = MPI_Send(buf, (int)bytes, MPI_BYTE, dest, tag, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
    g_bytes += (double)bytes;
    g_seconds += ml_now() - t0;
    return rc;
#else
    (void)buf, (void)bytes, (void)dest, (void)tag;
    return -1;
#endif
}

int ml_dist_poll(void *buf, size_t bytes, int source, int tag, int *from) {
#ifdef ML_HAVE_MPI
    if (g_size == 1 || bytes > (size_t)2147483647) return 0;
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(source < 0 ? MPI_ANY_SOURCE : source, tag, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return 0;
    double t0 = ml_now();
    MPI_Recv(buf, (int)bytes, MPI_BYTE, st.MPI_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    g_bytes += (double)bytes;
    g_seconds += ml_now() - t0;
    if (from) *from = st.MPI_SOURCE;
    return 1;
#else
    (void)buf, (void)bytes, (void)source, (void)tag, (void)from;
    return 0;
#endif
}

typedef struct agree_row {
    int32_t status, pad;
    uint64_t fingerprint;
    char msg[496];
} agree_row;

int ml_dist_agree(int status, const char *msg, uint64_t fingerprint, int *first_status, char *err, size_t errlen) {
    if (first_status) *first_status = status;
    if (g_size == 1) {
        if (status) snprintf(err, errlen, "%s", msg ? msg : "failed");
        return status ? -1 : 0;
    }
    agree_row *rows = calloc((size_t)g_size, sizeof *rows);
    if (!rows) ml_dist_abort("out of memory at the start of the job", 1);
    agree_row *me = &rows[g_rank];
    me->status = status;
    me->fingerprint = fingerprint;
    snprintf(me->msg, sizeof me->msg, "%s", status && msg ? msg : "");
    ml_dist_allgather_rows(rows, sizeof *rows, g_size);
    int rc = 0;
    for (int r = 0; r < g_size && !rc; r++)
        if (rows[r].status) {
            snprintf(err, errlen, "rank %d of %d: %s", r, g_size, rows[r].msg);
            if (first_status) *first_status = rows[r].status;
            rc = -1;
        }
    for (int r = 1; r < g_size && !rc; r++)
        if (rows[r].fingerprint != rows[0].fingerprint) {
            snprintf(err, errlen, "rank %d of %d runs other settings or another build than rank 0 (fingerprint "
                                  "%016llx, rank 0: %016llx): start every rank with the same binary and options",
                     r, g_size, (unsigned long long)rows[r].fingerprint, (unsigned long long)rows[0].fingerprint);
            if (first_status) *first_status = 0;
            rc = -1;
        }
    free(rows);
    return rc;
}

uint64_t ml_dist_hash(uint64_t h, const void *bytes, size_t n) {
    if (h == 0) h = 1469598103934665603ULL;
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t ml_dist_build_id(void) {
    static uint64_t id;
    if (id) return id;
    uint64_t h = ml_dist_hash(0, ml_version(), strlen(ml_version()));
    Dl_info info;
    FILE *f = dladdr((void *)ml_dist_build_id, &info) && info.dli_fname ? fopen(info.dli_fname, "rb") : NULL;
    if (f) {
        char buf[1 << 16];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) h = ml_dist_hash(h, buf, got);
        fclose(f);
    }
    id = h;
    return id;
}

void ml_dist_abort(const char *msg, int code) {
    fprintf(stderr, "metalearn: rank %d of %d: %s\n", g_rank, g_size, msg);
    fflush(stderr);
#ifdef ML_HAVE_MPI
    if (g_started) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}
