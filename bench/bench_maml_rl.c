/* bench_maml_rl: trains a MAML-RL learner (metalearn/rl.h) for some outer
 * iterations, then evaluates the return before and after 1..S adaptation
 * steps on fixed test tasks. Prints one JSON line per iteration and a final
 * JSON line {"steps":[...],"return":[...],"ci95":[...]} with the outer
 * iterations per second. --save writes the checkpoint after every iteration;
 * --load FILE --iters 0 only evaluates.
 *
 *   bench_maml_rl --env nav2d --algo maml --outer trpo --iters 50 --threads 2 \
 *       --eval-tasks 40 --eval-steps 3 [--save FILE] [--load FILE] [--rollouts 20] ... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metalearn/eval.h"
#include "metalearn/rl.h"

static double cpu_now(void) { /* process CPU seconds: fair under a busy machine's contention */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    ml_rl_config cfg = ml_rl_config_default();
    int iters = 10, eval_tasks = 40, eval_steps = 3;
    uint64_t eval_seed = 12345;
    const char *save = NULL, *load = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--env")) cfg.env = v;
        else if (!strcmp(k, "--algo")) {
            if (!ml_rl_algo_parse(v, &cfg.algo)) return fprintf(stderr, "--algo %s: unknown\n", v), 2;
        } else if (!strcmp(k, "--outer")) cfg.outer = !strcmp(v, "adam") ? ML_RL_ADAM : ML_RL_TRPO;
        else if (!strcmp(k, "--iters")) iters = atoi(v);
        else if (!strcmp(k, "--threads")) cfg.threads = atoi(v);
        else if (!strcmp(k, "--seed")) cfg.seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--rollouts")) cfg.rollouts = atoi(v);
        else if (!strcmp(k, "--meta-batch")) cfg.meta_batch = atoi(v);
        else if (!strcmp(k, "--horizon")) cfg.horizon = atoi(v);
        else if (!strcmp(k, "--inner-lr")) cfg.inner_lr = atof(v);
        else if (!strcmp(k, "--outer-lr")) cfg.outer_lr = atof(v);
        else if (!strcmp(k, "--eval-tasks")) eval_tasks = atoi(v);
        else if (!strcmp(k, "--eval-steps")) eval_steps = atoi(v);
        else if (!strcmp(k, "--eval-seed")) eval_seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--save")) save = v;
        else if (!strcmp(k, "--load")) load = v;
        else return fprintf(stderr, "unknown option %s\n", k), 2;
    }
    char err[256];
    ml_rl *rl = NULL;
    if (ml_rl_create(&cfg, &rl, err, sizeof err) != ML_OK) return fprintf(stderr, "%s\n", err), 1;
    if (load && ml_rl_load(rl, load) != ML_OK) return fprintf(stderr, "%s: cannot load\n", load), 1;
    double t0 = now(), c0 = cpu_now();
    for (int it = 0; it < iters; it++) {
        ml_rl_stats s;
        ml_status st = ml_rl_step(rl, &s);
        if (st != ML_OK) return fprintf(stderr, "step failed: %s\n", ml_status_text(st)), 1;
        printf("{\"iter\":%lld,\"train_return\":%.4f,\"valid_return\":%.4f,\"loss_before\":%.6g,"
               "\"loss_after\":%.6g,\"kl_after\":%.6g,\"step_size\":%.4g,\"elapsed_s\":%.2f,\"cpu_s\":%.2f}\n",
               (long long)s.iter, s.train_return, s.valid_return, s.loss_before, s.loss_after,
               s.kl_after, s.step_size, now() - t0, cpu_now() - c0);
        fflush(stdout);
        if (save && ml_rl_save(rl, save) != ML_OK) return fprintf(stderr, "%s: cannot save\n", save), 1;
    }
    double train_s = now() - t0;
    if (save && ml_rl_save(rl, save) != ML_OK) return fprintf(stderr, "%s: cannot save\n", save), 1;
    if (eval_tasks > 0) {
        double *r = calloc((size_t)eval_tasks * (eval_steps + 1), sizeof(double));
        double *col = calloc((size_t)eval_tasks, sizeof(double));
        if (ml_rl_evaluate(rl, eval_tasks, eval_steps, eval_seed, r) != ML_OK) return fprintf(stderr, "eval failed\n"), 1;
        printf("{\"algo\":\"%s\",\"outer\":\"%s\",\"env\":\"%s\",\"iters\":%lld,\"tasks\":%d,\"steps\":[",
               ml_rl_algo_name(cfg.algo), cfg.outer == ML_RL_ADAM ? "adam" : "trpo", cfg.env,
               (long long)ml_rl_iter(rl), eval_tasks);
        for (int s = 0; s <= eval_steps; s++) printf("%s%d", s ? "," : "", s);
        double mean[16], half[16];
        for (int s = 0; s <= eval_steps && s < 16; s++) {
            for (int t = 0; t < eval_tasks; t++) col[t] = r[(size_t)t * (eval_steps + 1) + s];
            ml_mean_ci95_t(col, eval_tasks, &mean[s], &half[s]);
        }
        printf("],\"return\":[");
        for (int s = 0; s <= eval_steps; s++) printf("%s%.3f", s ? "," : "", mean[s]);
        printf("],\"ci95\":[");
        for (int s = 0; s <= eval_steps; s++) printf("%s%.3f", s ? "," : "", half[s]);
        printf("]");
        const ml_env *env = ml_rl_env(rl);
        if (env->kind->best_mean) { /* bandits: regret of the pulls at each step, and UCB1 / Thompson's */
            int H = cfg.horizon ? cfg.horizon : env->horizon;
            printf(",\"regret\":[");
            for (int s = 0; s <= eval_steps; s++) {
                double reg = 0;
                for (int t = 0; t < eval_tasks; t++) {
                    ml_env_task task;
                    ml_rl_eval_task(rl, t, eval_seed, &task);
                    reg += H * env->kind->best_mean(env, &task) - r[(size_t)t * (eval_steps + 1) + s];
                }
                printf("%s%.3f", s ? "," : "", reg / eval_tasks);
            }
            double ucb, ts, ucb2, ts2; /* over one episode's pulls, and over two (adapt, then play) */
            ml_bandit_regret_classic(env, H, 1000, eval_seed, &ucb, &ts);
            ml_bandit_regret_classic(env, 2 * H, 1000, eval_seed, &ucb2, &ts2);
            printf("],\"pulls\":%d,\"ucb1_regret\":[%.3f,%.3f],\"thompson_regret\":[%.3f,%.3f]", H, ucb, ucb2, ts, ts2);
        }
        printf(",\"train_seconds\":%.2f,\"iters_per_s\":%.4f}\n", train_s, iters / (train_s > 0 ? train_s : 1));
        free(r), free(col);
    }
    ml_rl_destroy(rl);
    return 0;
}
