/* train_opts.c: `metalearn train`'s help and its entry point, which
 * applies --config / --resume settings, then the command line, and hands
 * over to the supervised or the meta-learning path. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "metalearn/options.h"
#include "cli/train_opts.h"
#include "cli/meta_run.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"

const char *const train_synopsis = "--algo ALGO (--dataset D | --task T) [options]";
const char *const train_about =
    "Trains a model and evaluates it.\n"
    "  --algo supervised: a classifier on IDX data (--dataset fashion-mnist|idx:DIR); reports test\n"
    "    accuracy with per-class and macro precision / recall / F1.\n"
    "  --algo maml|fomaml|metasgd|reptile|multitask: meta-learning on regression tasks\n"
    "    (--task sinusoid|linear[:D]|csv:FILE); writes a run folder (--out) with the effective config,\n"
    "    a JSON-lines log, atomic safetensors checkpoints and a final evaluation (MSE with 95% CI).\n"
    "  --algo maml|fomaml|metasgd|anil|reptile|protonet|matching|r2d2|pretrain --dataset D with D =\n"
    "    omniglot:PATH[,PATH], fashion-mnist, idx:DIR or folder:DIR (one class per label / subfolder):\n"
    "    N-way K-shot classification episodes (--ways, --shots, --query per class) on the 4-block CNN;\n"
    "    evaluated on held-out classes (accuracy with 95% CI), optionally on Lake's runs (--lake-runs).\n"
    "    pretrain: one classifier over all training classes on --batch-size minibatches, then a new\n"
    "    N-way head per episode (--finetune head|all, --eval-steps, --inner-lr).\n"
    "Settings can come from --config FILE.json (same names as the flags; flags override).\n"
    "--resume RUN continues an interrupted run bit-for-bit (--iters may extend it); --out refuses a\n"
    "folder that already holds a run unless --overwrite is given.";

int cmd_train(int argc, char **argv) {
    static ml_run_config o;
    ml_run_config_default(&o);
    int n;
    const ml_option *specs = ml_run_config_options(&o, &n);
    const ml_option_set cmd = {"train", train_synopsis, train_about, specs, n};
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
        fprintf(stderr,
                "metalearn train: --algo '%s': unknown (expected supervised, maml, fomaml, metasgd, anil, reptile, "
                "multitask, protonet, matching, r2d2 or pretrain)\n",
                o.algo);
        return EXIT_USAGE;
    }
    ml_run_config_resolve(&o);
    return run_meta(&o, &cmd);
}
