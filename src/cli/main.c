/* main.c: the `metalearn` command: one row per subcommand, dispatch, help.
 * This is the only part of metalearn that exits or prints to stdout. */
#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "metalearn/core.h"
#include "metalearn/dist.h"
#include "metalearn/meta.h"

/* Spins of a waiting OpenMP thread before it sleeps (see main). */
#define ML_OMP_SPINCOUNT "3000"

typedef struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
    int mpi; /* runs as several processes under mpirun (metalearn/dist.h) */
} subcommand;

static const subcommand commands[] = {
    {"train", cmd_train, "train a model: supervised classifier or meta-learner (learners below)", 1},
    {"eval", cmd_eval, "evaluate a meta-learning run on new tasks (MSE or accuracy with 95% CI, Lake's runs)", 1},
    {"search", cmd_search, "search train settings (random / evolution, successive halving) on validation tasks", 1},
    {"predict", cmd_predict, "adapt a few-shot run to your labelled images and label new ones", 0},
    {"plot", cmd_plot, "draw learning curves and MSE-vs-steps figures of runs as PNG", 0},
    {"params", cmd_params, "list a model's tensor names and shapes", 0},
    {"bench", cmd_bench, "measure meta-training speed (tasks/s, memory) of one configuration, writing nothing", 1},
};

/* Under mpirun: rank 0 speaks (stdout, progress); the others print errors only. */
static int start_processes(int *argc, char ***argv) {
    char err[256];
    if (ml_dist_init(argc, argv, err, sizeof err)) {
        fprintf(stderr, "metalearn: %s\n", err);
        return -1;
    }
    if (ml_dist_rank() > 0 && !freopen("/dev/null", "w", stdout)) return -1;
    return 0;
}

static int run_command(const subcommand *c, int argc, char **argv) {
    if (ml_dist_size() > 1 && !c->mpi) {
        fprintf(stderr, "metalearn %s: rank %d of %d: runs as one process; under mpirun only train, eval, bench and "
                        "search spread their work over processes\n", c->name, ml_dist_rank(), ml_dist_size());
        return EXIT_USAGE;
    }
    return c->fn(argc, argv);
}

/* Output that never reached its file (`predict ... > pred.csv` on a full
 * disk) is a failure, not a silent success: stdout is flushed and checked
 * once, at the end, naming the file it goes to. */
static int finish_stdout(const char *command, int status) {
    int e = fflush(stdout) ? errno : 0;
    if (!ferror(stdout)) return status;
    char target[4096] = "";
    ssize_t n = readlink("/proc/self/fd/1", target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    fprintf(stderr, "metalearn%s%s: %s%sstandard output%s: write failed: %s\n", command ? " " : "",
            command ? command : "", target, *target ? " (" : "", *target ? ")" : "", e ? strerror(e) : "write error");
    return status == EXIT_OK ? EXIT_FAIL : status;
}

static void usage(FILE *out) {
    fprintf(out, "usage: metalearn <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    char learners[256];
    fprintf(out, "\nlearners (train --algo): %s\n", ml_algo_list(learners, sizeof learners, " or "));
    fprintf(out, "\n'metalearn <command> --help' describes a command's options; 'metalearn --version' prints the "
                 "version.\n");
}

int main(int argc, char **argv) {
    /* Within-op OpenMP threads must not spin when the other core is busy
     * (measured: a 5-20x slowdown otherwise), but a short spin (GOMP_SPINCOUNT
     * 3000, libgomp's estimate ~30 us) before sleeping catches the next
     * parallel region of the same task: one ProtoNet 20w5s episode on 2
     * threads opens ~64 regions per step, and waking a sleeping thread for
     * each cost ~10% of the step (docs/results.md, issue 17 round 2). libgomp
     * reads both when it is loaded, before main, so set them and re-execute once. */
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0 &&
        (getenv("GOMP_SPINCOUNT") || setenv("GOMP_SPINCOUNT", ML_OMP_SPINCOUNT, 1) == 0))
        execv("/proc/self/exe", argv); /* on failure: carry on with the default */
    /* Ctrl-C is taken by the main thread only (train saves a checkpoint on
     * it). libgomp's threads start here with SIGINT/SIGTERM blocked; they
     * keep that mask for life. See run_meta for why this matters. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
#pragma omp parallel
    { (void)omp_get_thread_num(); }
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);
    if (start_processes(&argc, &argv)) return EXIT_FAIL;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return finish_stdout(NULL, EXIT_OK);
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("metalearn %s\n", ml_version());
        return finish_stdout(NULL, EXIT_OK);
    }
    enum { N_COMMANDS = sizeof commands / sizeof commands[0] };
    const char *names[N_COMMANDS];
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (!strcmp(argv[1], commands[i].name))
            return finish_stdout(commands[i].name, run_command(&commands[i], argc, argv));
        names[i] = commands[i].name;
    }
    const char *near = ml_suggest_name(names, N_COMMANDS, argv[1], strlen(argv[1]));
    if (near) {
        fprintf(stderr, "metalearn: unknown command '%s' (did you mean %s?)\n", argv[1], near);
        return EXIT_USAGE;
    }
    fprintf(stderr, "metalearn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
