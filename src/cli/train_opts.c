/* train_opts.c: `metalearn train`'s help and its entry point, which
 * applies --config / --resume settings, then the command line, and hands
 * over to the supervised or the meta-learning path. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "metalearn/options.h"
#include "cli/train_opts.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"

const char *const train_synopsis = "--algo ALGO (--dataset D | --task T) [options]";
/* The learners' part of the text comes from the learner table. */
const char *train_about(void) {
    static char text[4096];
    char regression[256] = "";
    for (int a = 0, first = 1; a < ML_ALGO_COUNT; a++)
        if (ml_algo_fits_loss((ml_algo)a, ML_LOSS_MSE)) {
            snprintf(regression + strlen(regression), sizeof regression - strlen(regression), "%s%s", first ? "" : "|",
                     ml_algo_name((ml_algo)a));
            first = 0;
        }
    int n = snprintf(text, sizeof text,
        "Trains a model and evaluates it.\n"
        "  --algo supervised: a classifier on IDX data (--dataset fashion-mnist|idx:DIR); reports test\n"
        "    accuracy with per-class and macro precision / recall / F1.\n"
        "  --algo %s: meta-learning on regression tasks\n"
        "    (--task sinusoid|linear[:D]|csv:FILE); writes a run folder (--out) with the effective config,\n"
        "    a JSON-lines log, atomic safetensors checkpoints and a final evaluation (MSE with 95%% CI).\n"
        "  --algo LEARNER (any below) --dataset D with D =\n"
        "    omniglot:PATH[,PATH], fashion-mnist, idx:DIR or folder:DIR (one class per label / subfolder):\n"
        "    N-way K-shot classification episodes (--ways, --shots, --query per class) on the 4-block CNN;\n"
        "    evaluated on held-out classes (accuracy with 95%% CI), optionally on Lake's runs (--lake-runs).\n"
        "    pretrain: one classifier over all training classes on --batch-size minibatches, then a new\n"
        "    N-way head per episode (--finetune head|all, --eval-steps, --inner-lr).\n"
        "Learners:\n", regression);
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
    if (!strcmp(o.algo, "supervised")) {
        ml_run_config_resolve(&o);
        return run_supervised(&o);
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
