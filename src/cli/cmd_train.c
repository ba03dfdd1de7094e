/* cmd_train.c: `metalearn train`: its help and its entry point, which
 * applies --config / --resume settings, then the command line, and hands
 * over to the supervised path (train_supervised.c) or the library's run
 * (metalearn/run.h: ml_run_open / ml_run_train / ml_run_evaluate), drawing
 * its progress and forwarding Ctrl-C as the run's stop flag. */
#include <math.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "metalearn/options.h"
#include "cli/train_opts.h"
#include "metalearn/dist.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"
#include "metalearn/sources.h"
#include "metalearn/run.h"

static volatile sig_atomic_t g_interrupted;
static void on_signal(int sig) { g_interrupted = sig; }

/* ---- progress ------------------------------------------------------------------------- */

static void format_duration(double s, char *buf, size_t len) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

typedef struct train_view {
    int tty, quiet;
    double last_draw;
} train_view;

/* A bar on a terminal (redrawn at most 10 times a second); plain lines every
 * log interval otherwise, so logs of batch jobs stay readable. */
static int on_iteration(void *user, const ml_run_progress *p) {
    train_view *v = user;
    if (v->quiet || (!v->tty && !p->logged)) return 0;
    int final = p->iteration == p->total;
    double loss = v->tty && !isfinite(p->log_loss) ? p->loss : p->log_loss;
    char eta[32];
    format_duration((p->total - p->iteration) / (p->rate > 0 ? p->rate : 1e-9), eta, sizeof eta);
    if (!v->tty) {
        fprintf(stderr, "iter %d/%d  loss %.4f  %.1f it/s  ETA %s\n", p->iteration, p->total, loss, p->rate, eta);
        return 0;
    }
    double now = ml_now();
    if (!final && now - v->last_draw < 0.1) return 0;
    v->last_draw = now;
    int width = 30, filled = (int)((double)width * p->iteration / p->total);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] %d/%d  %.1f it/s  ETA %s  loss %.4f ", bar, p->iteration, p->total, p->rate, eta, loss);
    if (final) fputc('\n', stderr);
    return 0;
}

/* ---- training ----------------------------------------------------------------------------- */

/* 2 for a setting the library refused, else 1. */
static int exit_status(ml_status s) { return s == ML_ERR_ARG ? EXIT_USAGE : EXIT_FAIL; }

static void banner(const ml_run_config *o, const ml_run_info *in) {
    ml_algo algo = (ml_algo)0;
    ml_algo_parse(in->algo, &algo); /* the run's own name: it parses */
    if (ml_algo_info(algo)->batch_training)
        fprintf(stderr, "train: pretrain on %s, model %s (%lld parameters) + a %d-class head, minibatch %d, %s %g, "
                        "%d threads -> %s\n", o->dataset, in->model_spec, (long long)in->n_params,
                in->train_classes, in->batch_size, o->optimizer, o->outer_lr, in->threads, in->dir);
    else {
        char inner[96] = "an episode head (no inner steps)";
        if (in->has_inner_steps) snprintf(inner, sizeof inner, "%d inner step(s) at %g", o->inner_steps, o->inner_lr);
        fprintf(stderr, "train: %s on %s, model %s (%lld parameters), K=%d, meta-batch %d, %s, outer %s %g, "
                        "%d threads -> %s\n",
                o->algo, in->fewshot ? o->dataset : o->task, in->model_spec, (long long)in->n_params, o->shots,
                o->meta_batch, inner, o->optimizer, o->outer_lr, in->threads, in->dir);
    }
    if (!o->resume && ml_algo_info(algo)->init_takes_extras && strstr(o->init, ".safetensors"))
        fprintf(stderr, "train: --init %s: parameters%s\n", o->init,
                in->init_rates ? " and Meta-SGD rates (alpha.NAME)" : "; no alpha.NAME rates in it, so the rates start at --inner-lr");
}

/* Ctrl-C and SIGTERM set the run's stop flag (on their own stack:
 * ml_catch_stop_signals). Worker threads never take the signal (main.c,
 * pool.c). */
static void catch_stop_signals(void) { ml_catch_stop_signals(on_signal); }

/* Meta-RL progress: a line per iteration (the return after adaptation). */
static int on_rl_iteration(void *user, const ml_run_progress *p) {
    const train_view *v = user;
    if (!v->quiet)
        fprintf(stderr, "iter %d/%d  return after adaptation %.3f  %.2f it/s\n", p->iteration, p->total, p->loss,
                p->rate);
    return 0;
}

/* --env: a meta-RL run through the same run handle (the library hands it to
 * its RL code); ends with the evaluation on the test tasks as every run does. */
static int run_rl(ml_run_config *o) {
    char err[1024];
    ml_run *run;
    ml_run_open_options oo = {.notes = stderr};
    ml_status s = ml_run_open(&run, o, o->resume ? ML_RUN_RESUME : ML_RUN_NEW, &oo, err, sizeof err);
    if (s) {
        fprintf(stderr, "metalearn train: %s\n", err);
        return exit_status(s);
    }
    ml_run_info in;
    ml_run_get_info(run, &in);
    if (!o->quiet) {
        if (!strcmp(o->algo, "random"))
            fprintf(stderr, "train: meta-RL random policy on %s (%s, %lld parameters): the untrained initialisation, "
                            "saved -> %s\n", o->env, in.model_spec, (long long)in.n_params, in.dir);
        else
            fprintf(stderr, "train: meta-RL %s on %s, %s (%lld parameters), outer %s, %d rollouts x horizon %d (0: the "
                            "env's), meta-batch %d, %d inner step(s) at %g, %d threads -> %s\n", o->algo, o->env,
                    in.model_spec, (long long)in.n_params, o->outer, o->rollouts, o->horizon, o->meta_batch,
                    o->inner_steps, o->inner_lr, in.threads, in.dir);
    }
    catch_stop_signals();
    train_view view = {.quiet = o->quiet};
    ml_run_callbacks cb = {.on_iteration = on_rl_iteration, .user = &view, .stop = &g_interrupted};
    int status = EXIT_OK;
    s = ml_run_train(run, &cb, err, sizeof err);
    ml_run_get_info(run, &in);
    if (s) {
        fprintf(stderr, "metalearn train: %s\n", err);
        status = s == ML_ERR_INTERRUPTED ? 130 : exit_status(s);
    } else if (o->stop_at > 0 && o->stop_at < o->iters && in.iteration < o->iters && strcmp(o->algo, "random")) {
        fprintf(stderr, "metalearn train: stopped at iteration %d of %d (--stop-at); continue with metalearn train "
                        "--resume %s\n", in.iteration, o->iters, in.dir);
    } else {
        if (!o->quiet && in.iteration > in.start_iteration)
            fprintf(stderr, "train: %d iterations in %.1f s (%.2f it/s)\n", in.iteration - in.start_iteration,
                    in.session_s, (in.iteration - in.start_iteration) / (in.session_s + 1e-9));
        s = ml_run_evaluate(run, &(ml_run_eval_options){.out = stdout}, err, sizeof err);
        if (s) fprintf(stderr, "metalearn train: %s\n", err);
        status = s ? exit_status(s) : EXIT_OK;
    }
    ml_run_close(run);
    return status;
}

static int run_meta(ml_run_config *o) {
    char err[1024];
    ml_run *run;
    int speaker = ml_dist_rank() == 0; /* under mpirun rank 0 tells the progress */
    ml_run_open_options oo = {.notes = speaker ? stderr : NULL};
    ml_status s = ml_run_open(&run, o, o->resume ? ML_RUN_RESUME : ML_RUN_NEW, &oo, err, sizeof err);
    if (s) {
        fprintf(stderr, "metalearn train: %s\n", err);
        return exit_status(s);
    }
    ml_run_info in;
    ml_run_get_info(run, &in);
    if (!o->quiet && speaker) banner(o, &in);
    if (!o->quiet && speaker && ml_dist_size() > 1)
        fprintf(stderr, "train: %d processes (mpirun), each with %d threads, share each meta-batch\n", ml_dist_size(),
                in.threads);

    catch_stop_signals();

    train_view view = {.tty = isatty(2) && !o->quiet && speaker, .quiet = o->quiet || !speaker};
    ml_run_callbacks cb = {.on_iteration = on_iteration, .user = &view, .stop = &g_interrupted};
    int status = EXIT_FAIL;
    s = ml_run_train(run, &cb, err, sizeof err);
    if (s == ML_ERR_INTERRUPTED) {
        if (view.tty) fputc('\n', stderr);
        if (speaker) fprintf(stderr, "metalearn train: %s\n", err);
        status = 130;
        goto done;
    }
    if (s) {
        fprintf(stderr, "metalearn train: %s\n", err);
        goto done;
    }
    ml_run_get_info(run, &in);
    if (!o->quiet && speaker && in.iteration > in.start_iteration)
        fprintf(stderr, "train: %d iterations in %.1f s (%.1f it/s)\n", in.iteration - in.start_iteration, in.session_s,
                (in.iteration - in.start_iteration) / (in.session_s + 1e-9));
    if (in.iteration < o->iters) { /* --stop-at: the checkpoint was saved in the loop */
        if (view.tty) fputc('\n', stderr);
        if (speaker)
            fprintf(stderr, "metalearn train: stopped at iteration %d of %d (--stop-at); continue with metalearn train "
                        "--resume %s\n", in.iteration, o->iters, in.dir);
        status = EXIT_OK;
        goto done;
    }
    s = ml_run_evaluate(run, &(ml_run_eval_options){.out = stdout}, err, sizeof err);
    if (s) fprintf(stderr, "metalearn train: %s\n", err);
    status = s ? exit_status(s) : EXIT_OK;
done:
    ml_run_close(run);
    return status;
}

const char *const train_synopsis = "--algo ALGO (--dataset D | --task T | --env E) [options]";
/* The learners' part of the text comes from the learner table. */
const char *train_about(void) {
    static char text[4096];
    char regression[256] = "", tasks[128], images[256];
    for (int a = 0, first = 1; a < ML_ALGO_COUNT; a++)
        if (ml_algo_fits_loss((ml_algo)a, ML_LOSS_MSE)) {
            snprintf(regression + strlen(regression), sizeof regression - strlen(regression), "%s%s", first ? "" : "|",
                     ml_algo_name((ml_algo)a));
            first = 0;
        }
    int n = snprintf(text, sizeof text,
        "Trains a model and evaluates it.\n"
        "  --algo supervised: a classifier on IDX data (--dataset fashion-mnist|idx:DIR); reports test\n"
        "    accuracy with per-class and macro precision / recall / F1; --out DIR keeps config, log and a\n"
        "    checkpoint per epoch (--resume DIR); --shards G splits each minibatch over threads and mpirun\n"
        "    processes (batch norm per shard; the result depends on G only).\n"
        "  --algo %s: meta-learning on regression tasks\n"
        "    (--task %s); writes a run folder (--out) with the effective config,\n"
        "    a JSON-lines log, atomic safetensors checkpoints and a final evaluation (MSE with 95%% CI).\n"
        "  --algo LEARNER (any below) --dataset D with D =\n"
        "    %s (one class per label / subfolder):\n"
        "    N-way K-shot classification episodes (--ways, --shots, --query per class) on the 4-block CNN;\n"
        "    evaluated on held-out classes (accuracy with 95%% CI), optionally on Lake's runs (--lake-runs).\n"
        "    pretrain: one classifier over all training classes on --batch-size minibatches, then a new\n"
        "    N-way head per episode (--finetune head|all, --eval-steps, --inner-lr).\n"
        "  --env nav2d|bandit:K|nav2d-rot --algo maml|fomaml|pretrain|oracle|random: meta-RL (MAML-RL,\n"
        "    TRPO or --outer adam), --rollouts, --horizon, --meta-batch; ends with the return before and\n"
        "    after --eval-steps adaptation steps on --eval-tasks (40) test tasks (--eval-lr: the rate).\n"
        "Learners:\n", regression, ml_source_list(tasks, sizeof tasks, ML_SOURCE_TASKS, 0, " or "),
        ml_source_list(images, sizeof images, ML_SOURCE_IMAGES, 0, " or "));
    for (int a = 0; a < ML_ALGO_COUNT && n > 0 && (size_t)n < sizeof text; a++) {
        const ml_learner_info *l = ml_algo_info((ml_algo)a);
        n += snprintf(text + n, sizeof text - (size_t)n, "  %-10s %s\n             (default --meta-batch %d%s%s)\n",
                      l->name, l->description, l->default_meta_batch,
                      l->adapts == ML_ADAPT_NONE ? ", no inner steps" : ", --eval-steps ",
                      l->adapts == ML_ADAPT_NONE ? "" : l->default_eval_steps);
    }
    if (n > 0 && (size_t)n < sizeof text)
        snprintf(text + n, sizeof text - (size_t)n, "%s",
            "Settings can come from --config FILE.json (same names as the flags; flags override).\n"
            "--resume RUN continues an interrupted run bit-for-bit (--iters may extend it); --out refuses a\n"
            "folder that already holds a run unless --overwrite is given.");
    return text;
}

int cmd_train(int argc, char **argv) {
    static ml_run_config o;
    ml_run_config_default(&o);
    int n;
    const ml_option *specs = ml_run_config_options(&o, &n);
    const ml_option_set cmd = {"train", train_synopsis, train_about(), specs, n};
    char err[512];
    /* Settings files first (a run's own config when resuming), flags last. */
    const char *resume = args_find_value(argc, argv, 2, "resume");
    if (resume) {
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", resume);
        int r = ml_options_apply_file(&cmd, path, err, sizeof err);
        if (r) {
            fprintf(stderr, "metalearn train: --resume: %s\n", err);
            return r == ML_OPTIONS_FILE_ERROR ? EXIT_FAIL : EXIT_USAGE;
        }
        o.json = o.quiet = 0; /* presentation flags come from this command line only */
        o.stop_at = 0;        /* and so does a stopping point */
        o.overwrite = 0;      /* and permission to replace a run */
        char note[1024];
        if (ml_run_config_legacy(&o, resume, note, sizeof note)) fprintf(stderr, "train: %s\n", note);
    }
    const char *config = args_find_value(argc, argv, 2, "config");
    if (config) {
        int r = ml_options_apply_file(&cmd, config, err, sizeof err);
        if (r) {
            fprintf(stderr, "metalearn train: %s\n", err);
            return r == ML_OPTIONS_FILE_ERROR ? EXIT_FAIL : EXIT_USAGE;
        }
    }
    const char *pos[1];
    int npos;
    int r = args_parse(&cmd, argc, argv, 2, pos, 0, &npos);
    if (r == ARGS_HELP) return EXIT_OK;
    if (r) return EXIT_USAGE;
    /* Only this command line resumes: the config.json of a resumed run names
     * its folder too, and `--config RUN/config.json --out NEW` starts anew. */
    o.resume = resume;
    if (resume) o.out = resume;
    if (o.env) { /* meta-RL: its learners are the RL table's; maml unless --algo says otherwise */
        if (!strcmp(o.algo, "supervised")) o.algo = "maml";
        ml_run_config_resolve(&o);
        return run_rl(&o);
    }
    if (!strcmp(o.algo, "supervised")) {
        ml_run_config_resolve(&o);
        catch_stop_signals();
        return run_supervised(&o, &g_interrupted);
    }
    ml_algo a;
    if (ml_algo_parse(o.algo, &a)) {
        char names[256];
        fprintf(stderr, "metalearn train: --algo '%s': unknown (expected supervised, %s)\n", o.algo,
                ml_algo_list(names, sizeof names, " or "));
        return EXIT_USAGE;
    }
    ml_run_config_resolve(&o);
    return run_meta(&o);
}
