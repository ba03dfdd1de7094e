/* cmd_bench.c: `metalearn bench`: how fast one meta-training configuration runs
 * on this machine, without writing a run.
 *
 * It takes train's options, runs --warmup outer iterations untimed, then times
 * --iters iterations one by one and reports the median (the machine may be
 * shared: a median ignores the odd slow iteration), tasks per second and the
 * peak resident memory. Few-shot runs need a folder for the class split; it is
 * made in a fresh temporary directory and removed afterwards.
 *
 * Under mpirun the ranks share each iteration's tasks: an iteration takes as
 * long as its slowest rank (each rank times it from a common start), and
 * rank 0 prints that median once, with the communication per iteration. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "metalearn/options.h"
#include "metalearn/run.h"
#include "cli/train_opts.h"
#include "metalearn/core.h"
#include "metalearn/dist.h"

/* User + system seconds of this process (all its threads). */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The temporary folder and its split file, as paths a signal handler can use. */
static char temp_dir[4096], temp_split[4200];

static void remove_temp_dir(void) {
    if (!temp_split[0]) return; /* none made (or not by this rank) */
    unlink(temp_split);
    rmdir(temp_dir);
}

/* Ctrl-C: nothing to save, but leave no folder behind (unlink, rmdir and
 * _exit are async-signal-safe). */
static void on_stop_signal(int sig) {
    (void)sig;
    remove_temp_dir();
    _exit(130);
}

int cmd_bench(int argc, char **argv) {
    static ml_run_config o;
    ml_run_config_default(&o);
    int n;
    const ml_option *train_specs = ml_run_config_options(&o, &n);
    int warmup = 2, timed = 10;
    ml_option specs[80];
    if (n + 2 > (int)(sizeof specs / sizeof specs[0])) {
        fprintf(stderr, "metalearn bench: internal: %d train options do not fit the table\n", n);
        return EXIT_FAIL;
    }
    int k = 0;
    for (int i = 0; i < n; i++) /* train's options, without those about a run folder */
        if (strcmp(train_specs[i].name, "iters") && strcmp(train_specs[i].name, "resume") &&
            strcmp(train_specs[i].name, "out") && strcmp(train_specs[i].name, "stop-at"))
            specs[k++] = train_specs[i];
    specs[k++] = (ml_option){"warmup", ML_OPT_INT, &warmup, "untimed outer iterations first (default 2)", 0, 1000000};
    specs[k++] = (ml_option){"iters", ML_OPT_INT, &timed, "timed outer iterations (default 10)", 1, 1000000};
    const ml_option_set cmd = {"bench", "--algo A (--task T | --dataset D) [train's options] [--warmup 2] [--iters 10]",
                         "Measures meta-training speed for one configuration (the options of `train`): runs\n"
                         "--warmup outer iterations, times --iters more one by one and prints the median\n"
                         "seconds per iteration, tasks per second and the peak resident memory. Nothing is\n"
                         "written (a few-shot class split goes to a temporary folder in $TMPDIR, else /tmp,\n"
                         "removed after).",
                         specs, k};
    const char *config = args_find_value(argc, argv, 2, "config");
    char err[1024];
    if (config && ml_options_apply_file(&cmd, config, err, sizeof err)) {
        fprintf(stderr, "metalearn bench: %s\n", err);
        return EXIT_USAGE;
    }
    const char *pos[1];
    int npos;
    int r = args_parse(&cmd, argc, argv, 2, pos, 0, &npos);
    if (r == ARGS_HELP) return EXIT_OK;
    if (r) return EXIT_USAGE;
    ml_run_config_resolve(&o);
    if (!strcmp(o.algo, "supervised")) {
        fprintf(stderr, "metalearn bench: measures meta-training; for supervised training see bench/supervised_vs_torch.sh\n");
        return EXIT_USAGE;
    }
    /* in $TMPDIR as other tools do (a test or a job gets a folder of its own), else /tmp */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    const int rank = ml_dist_rank(), ranks = ml_dist_size();
    int fits = snprintf(temp_dir, sizeof temp_dir, "%s/metalearn-bench-XXXXXX", tmp) < (int)sizeof temp_dir;
    int no_dir = rank == 0 && (!fits || !mkdtemp(temp_dir));
    if (ml_dist_any(no_dir)) {
        fprintf(stderr, "metalearn bench: cannot make a temporary folder in %s (TMPDIR)\n", tmp);
        return EXIT_FAIL;
    }
    /* one folder for the job (the settings must match across ranks); rank 0 owns it */
    static char job_dir[sizeof temp_dir];
    memcpy(job_dir, temp_dir, sizeof job_dir);
    ml_dist_broadcast(job_dir, sizeof job_dir, 0);
    if (rank == 0) snprintf(temp_split, sizeof temp_split, "%s/split.json", temp_dir);
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    o.out = job_dir;
    o.iters = warmup + timed;
    o.eval_tasks = 0;     /* no final evaluation */
    o.eval_steps = "1";   /* (checked by the setup, unused) */
    ml_run *run = NULL;
    ml_run_open_options oo = {.notes = rank == 0 ? stderr : NULL};
    ml_status st = ml_run_open(&run, &o, ML_RUN_SCRATCH, &oo, err, sizeof err);
    int status = st == ML_ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
    /* per timed iteration: this rank's seconds; then every rank's (job_secs) */
    double *secs = calloc((size_t)timed, sizeof *secs);
    double *job_secs = calloc((size_t)timed * (size_t)ranks, sizeof *job_secs);
    double comm_bytes = 0, comm_s = 0, busy_s = 0;
    if (st || !secs || !job_secs) {
        if (!st) snprintf(err, sizeof err, "out of memory");
        fprintf(stderr, "metalearn bench: %s\n", err);
        goto done;
    }
    status = EXIT_FAIL;
    double loss = NAN, cpu0 = 0;
    for (int it = 0; it < warmup + timed; it++) {
        if (it == warmup) cpu0 = cpu_seconds();
        ml_dist_any(0); /* every rank starts the iteration together */
        double b0, c0, b1, c1;
        ml_dist_stats(&b0, &c0);
        double t0 = ml_now();
        if (ml_run_step(run, &loss, err, sizeof err)) {
            fprintf(stderr, "metalearn bench: %s\n", err);
            goto done;
        }
        double t1 = ml_now();
        ml_dist_stats(&b1, &c1);
        if (it >= warmup) {
            secs[it - warmup] = t1 - t0;
            comm_bytes += b1 - b0;
            comm_s += c1 - c0;
            busy_s += t1 - t0;
        }
    }
    /* CPU time of the whole job per iteration (every rank, every thread; MPI's
     * polling while a rank waits included): unlike wall time, a busy
     * machine barely changes it, so it shows what splitting the tasks costs. */
    double cpu[1] = {cpu_seconds() - cpu0}, cpu_sum = 0, *cpus = calloc((size_t)ranks, sizeof *cpus);
    if (!cpus) {
        fprintf(stderr, "metalearn bench: out of memory\n");
        goto done;
    }
    cpus[rank] = cpu[0];
    ml_dist_allgather_rows(cpus, sizeof *cpus, ranks);
    for (int r = 0; r < ranks; r++) cpu_sum += cpus[r];
    free(cpus);
    /* The job's iteration: as long as its slowest rank. */
    memcpy(job_secs + (size_t)rank * timed, secs, (size_t)timed * sizeof *secs);
    ml_dist_allgather_rows(job_secs, (size_t)timed * sizeof *secs, ranks);
    for (int i = 0; i < timed; i++)
        for (int r = 0; r < ranks; r++) secs[i] = fmax(secs[i], job_secs[(size_t)r * timed + i]);
    qsort(secs, (size_t)timed, sizeof *secs, cmp_double);
    const double med = timed % 2 ? secs[timed / 2] : 0.5 * (secs[timed / 2 - 1] + secs[timed / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    ml_run_info in;
    ml_run_get_info(run, &in);
    const int step_tasks = ml_run_tasks_per_step(run);
    const double peak_mb = ru.ru_maxrss / 1024.0, tasks_per_s = step_tasks / med;
    const char *data = in.fewshot ? o.dataset : o.task;
    /* rank 0's communication (it gathers every rank's rows: the busiest) */
    const double bytes_per_iter = comm_bytes / timed, comm_share = busy_s > 0 ? comm_s / busy_s : 0;
    if (!o.json) {
        printf("bench: %s on %s, model %s, %d tasks per iteration, %d threads: %.4f s per iteration (median of %d; "
               "fastest %.4f), %.2f tasks/s, peak memory %.0f MB\n",
               in.algo, data, in.model_spec, step_tasks, in.threads, med, timed, secs[0],
               tasks_per_s, peak_mb);
        printf("bench: %.4f CPU seconds per iteration (all threads%s)\n", cpu_sum / timed, ranks > 1 ? " of all ranks" : "");
        if (ranks > 1)
            printf("bench: %d processes (mpirun) x %d threads; rank 0 communicated %.2f MB per iteration, %.1f%% of its "
                   "iteration time (waiting for other ranks included)\n",
                   ranks, in.threads, bytes_per_iter / 1e6, 100 * comm_share);
    } else { /* cJSON escapes the paths */
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "command", "bench");
        cJSON_AddStringToObject(j, "algo", in.algo);
        cJSON_AddStringToObject(j, "data", data);
        cJSON_AddStringToObject(j, "model", in.model_spec);
        const struct { const char *key; double v; } nums[] = {
            {"ways", ml_run_ways(run)}, {"shots", o.shots}, {"query", o.query},
            {"tasks_per_iter", step_tasks}, {"inner_steps", o.inner_steps}, {"threads", in.threads},
            {"warmup", warmup}, {"iters", timed}, {"seconds_per_iter_median", med}, {"seconds_per_iter_min", secs[0]},
            {"tasks_per_s", tasks_per_s}, {"peak_rss_mb", peak_mb}, {"last_loss", isfinite(loss) ? loss : -1},
            {"ranks", ranks}, {"comm_bytes_per_iter", bytes_per_iter}, {"comm_time_share", comm_share},
            {"cpu_seconds_per_iter", cpu_sum / timed}};
        for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) cJSON_AddNumberToObject(j, nums[i].key, nums[i].v);
        char *line = cJSON_PrintUnformatted(j);
        if (line) printf("%s\n", line);
        cJSON_free(line);
        cJSON_Delete(j);
    }
    status = EXIT_OK;
done:
    free(secs);
    free(job_secs);
    ml_run_close(run);
    remove_temp_dir();
    return status;
}
