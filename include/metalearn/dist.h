/* metalearn/dist.h: the processes of one job (MPI ranks), as small as the
 * library needs them: who am I, how many are we, and a few collectives whose
 * results never depend on the number of processes (fixed-order gathers and
 * sums), so data-parallel training stays bit-identical to one process.
 *
 * Built without MPI (cmake -DML_MPI=OFF) or started without mpirun, the job
 * is one process: rank 0 of size 1, every collective a copy or a no-op, so
 * callers have one code path. MPI starts only when the process was launched
 * by mpirun (Open MPI's OMPI_COMM_WORLD_SIZE / PMIx environment): a plain
 * `metalearn train` never touches MPI.
 *
 * Every collective must be called by every rank in the same order. A rank
 * that cannot go on calls ml_dist_abort, which ends the whole job. Only the
 * thread that called ml_dist_init calls these (MPI_THREAD_FUNNELED). */
#ifndef METALEARN_DIST_H
#define METALEARN_DIST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts MPI when launched by mpirun (idempotent, argc/argv may be NULL);
 * returns 0, or -1 with err set when MPI failed to start. */
int ml_dist_init(int *argc, char ***argv, char *err, size_t errlen);
/* Ends MPI if ml_dist_init started it (idempotent; also run at exit). */
void ml_dist_finalize(void);
/* 1 when this library was built with MPI (whether or not it is running). */
int ml_dist_built_with_mpi(void);
int ml_dist_rank(void); /* 0 .. size-1; 0 without MPI */
int ml_dist_size(void); /* 1 without MPI */

/* The block of n items this rank owns: [*lo, *hi), contiguous, in rank
 * order, sizes differing by at most one (n < size: some ranks own none). */
void ml_dist_slice(int n, int *lo, int *hi);
/* The rank owning item i of n under ml_dist_slice. */
int ml_dist_owner(int n, int item);

/* buf holds n rows of row_bytes; each rank has filled its own slice
 * (ml_dist_slice). Afterwards the root (all: every rank) holds every row,
 * in item order. Returns 0, or -1 when the rows exceed MPI's int counts. */
int ml_dist_gather_rows(void *buf, size_t row_bytes, int n, int root);
int ml_dist_allgather_rows(void *buf, size_t row_bytes, int n);
/* Sums n floats over ranks in rank order (0 + 1 + 2 ...), the result on
 * every rank: the same bits whatever the network does. */
int ml_dist_sum_floats(const float *mine, float *sum, int64_t n);
/* The root's bytes to every rank. */
void ml_dist_broadcast(void *buf, size_t bytes, int root);
/* 1 on every rank when flag is non-zero on any (a shared stop decision). */
int ml_dist_any(int flag);

/* Point to point, for work handed out as it goes (the search's trials):
 * fixed-size messages of bytes under a tag (>= 0; the library's callers
 * pick their own). ml_dist_send blocks until buf may be reused;
 * ml_dist_poll never blocks: it receives a waiting message with the tag
 * from source (-1: any rank), sets *from (may be NULL) and returns 1, else
 * returns 0 (so an idle rank can sleep between polls instead of spinning in
 * MPI's blocking receive, leaving the cores to the work). One process: no
 * message ever arrives; sending is an error (-1). */
int ml_dist_send(const void *buf, size_t bytes, int dest, int tag);
int ml_dist_poll(void *buf, size_t bytes, int source, int tag, int *from);

/* In a child forked by a rank (fork() copies MPI's state, which only the
 * parent may use): from here on this process is a job of one, never calls
 * MPI (not even MPI_Finalize at exit) and never starts it again, and the
 * launcher's variables are removed from its environment, so a program it
 * executes starts as one process too. */
void ml_dist_detach(void);

/* Processes of this job on this machine (Open MPI's local size; 1 without
 * MPI): dividing the machine's cores among them gives each its share. */
int ml_dist_node_size(void);

/* Agreement at the start of a job: every rank brings its status (0: ready)
 * with a one-line message, and a fingerprint of its settings and binary.
 * Returns 0 when every rank is ready with the same fingerprint, else -1 on
 * every rank with err naming the first failing rank and its message (or the
 * ranks whose fingerprints differ) and *first_status (may be NULL) that
 * rank's status (0 for differing fingerprints), so all ranks exit alike. */
int ml_dist_agree(int status, const char *msg, uint64_t fingerprint, int *first_status, char *err, size_t errlen);
/* A 64-bit fingerprint of bytes (FNV-1a), to chain: h = ml_dist_hash(h, ...). */
uint64_t ml_dist_hash(uint64_t h, const void *bytes, size_t n);
/* A fingerprint of the code this process runs: the file of the library (or
 * the program it is linked into), with the version. */
uint64_t ml_dist_build_id(void);

/* Ends every rank of the job: prints "metalearn: rank R: msg" on stderr and
 * aborts through MPI (exit(code) without MPI). */
void ml_dist_abort(const char *msg, int code);

/* Communication of this process so far: bytes sent plus received by the
 * collectives above, and seconds spent inside them (waiting included). */
void ml_dist_stats(double *bytes, double *seconds);
void ml_dist_stats_reset(void);

#ifdef __cplusplus
}
#endif
#endif
