/* train_opts.c: `metalearn train`'s option table and its entry point, which
 * applies --config / --resume settings, then the command line, and hands
 * over to the supervised or the meta-learning path. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/config.h"
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

void train_opts_defaults(train_opts *o) {
    memset(o, 0, sizeof *o);
    o->algo = "supervised";
    o->init = "torch";
    o->seed = 1;
    o->dataset = NULL; /* supervised: fashion-mnist; meta-learning: --task */
    o->finetune = "head";
    o->optimizer = "adam";
    o->schedule = "constant";
    o->epochs = 10;
    o->batch_size = 64;
    o->lr = 1e-3f;
    o->weight_decay = -1; /* resolved: the optimizer's own default (AdamW 0.01, others 0) */
    o->momentum = -1; /* resolved per path: 0.9 supervised, 0 for the outer optimizer of meta-learning */
    o->task = "sinusoid";
    o->shots = 10;
    o->query = 10;
    o->iters = 20000;
    o->meta_batch = 0; /* the learner's default, see train_opts_resolve */
    o->inner_steps = 1;
    o->inner_lr = 0.01f;
    o->outer_lr = 1e-3f;
    o->log_every = 100;
    o->checkpoint_every = 1000;
    o->checkpoint_minutes = 5;
    o->eval_tasks = 600;
    o->eval_query = 100;
    o->eval_shots = NULL; /* default: the training shots */
    o->eval_steps = NULL; /* resolved per algorithm: 1,10, or 100 for pretrain */
    o->eval_seed = 20260101;
    o->ways = 5;
    o->rotations = 1;
    o->split_by = "character";
    o->split = "0.6,0.1,0.3";
    o->task_sampler = "uniform";
    o->select_k = 50;
    o->select_prob = 0.5f;
    o->select_every = 100;
    o->curriculum_strength = 1.0f;
    o->lake_steps = 0; /* the largest --eval-steps */
}

const arg_spec *train_opts_table(train_opts *o, int *n) {
    static arg_spec specs[64];
    const arg_spec table[] = {
        {"algo", ARG_STRING, &o->algo, "supervised, maml, fomaml, metasgd, anil, reptile, multitask, protonet, matching, r2d2 or pretrain", 1, 0},
        {"model", ARG_STRING, &o->model, "mlp[:W1,W2,...] or cnn4[:FILTERS] (default mlp for supervised, mlp:40,40 for tasks)", 1, 0},
        {"init", ARG_STRING, &o->init, "torch, kaiming, xavier, or FILE.safetensors to start from given parameters", 1, 0},
        {"seed", ARG_U64, &o->seed, "random seed (initialisation, shuffling, tasks)", 0, 1.8e19},
        {"threads", ARG_INT, &o->threads, "threads (default: all cores)", 0, 1024},
        {"config", ARG_STRING, &o->config, "read settings from a JSON file (flags override it)", 1, 0},
        {"out", ARG_STRING, &o->out, "run folder for config, log, checkpoints, evaluation", 1, 0},
        {"resume", ARG_STRING, &o->resume, "continue the run in this folder", 1, 0},
        {"overwrite", ARG_FLAG, &o->overwrite, "let --out replace a run already there (otherwise refused: use --resume or another folder)", 0, 0},
        {"json", ARG_FLAG, &o->json, "print the final metrics as JSON on the last line", 0, 0},
        {"quiet", ARG_FLAG, &o->quiet, "no progress output on stderr", 0, 0},
        {"dataset", ARG_STRING, &o->dataset, "supervised: fashion-mnist (default) or idx:DIR; few-shot: omniglot:PATH[,PATH...], fashion-mnist, idx:DIR or folder:DIR", 1, 0},
        {"epochs", ARG_INT, &o->epochs, "supervised: passes over the training set (default 10)", 1, 100000},
        {"batch-size", ARG_INT, &o->batch_size, "supervised: examples per step (default 64)", 2, 1 << 20},
        {"lr", ARG_FLOAT, &o->lr, "supervised: learning rate (default 1e-3)", 1e-12, 1e3},
        {"optimizer", ARG_STRING, &o->optimizer, "sgd, adagrad, rmsprop, adam or adamw (also the outer optimizer)", 1, 0},
        {"momentum", ARG_FLOAT, &o->momentum, "SGD/RMSprop momentum (default 0.9 for supervised, 0 for the outer optimizer of meta-learning)", 0, 0.9999},
        {"weight-decay", ARG_FLOAT, &o->weight_decay, "weight decay (default 0; adamw 0.01)", 0, 10},
        {"schedule", ARG_STRING, &o->schedule, "learning-rate schedule over the steps (supervised) or outer iterations (meta): constant, step (x0.1 every third) or cosine (to 0)", 1, 0},
        {"clip", ARG_FLOAT, &o->clip, "supervised: clip gradients to this global L2 norm (0 = off)", 0, 1e9},
        {"limit", ARG_INT, &o->limit, "supervised: use only the first N training examples (0 = all)", 0, 1 << 30},
        {"task", ARG_STRING, &o->task, "meta: sinusoid, linear[:D] or csv:FILE", 1, 0},
        {"shots", ARG_INT, &o->shots, "meta: support points per task, K (default 10)", 1, 100000},
        {"query", ARG_INT, &o->query, "meta: query points per training task, or per class in episodes (default 10; 0 = all rows of a CSV task)", 0, 100000},
        {"iters", ARG_INT, &o->iters, "meta: outer iterations (default 20000)", 1, 100000000},
        {"stop-at", ARG_INT, &o->stop_at, "meta: stop after this iteration with a checkpoint, to --resume later (--iters still sets the schedule)", 0, 100000000},
        {"meta-batch", ARG_INT, &o->meta_batch, "meta: tasks per outer update (default: the learner's, 25 for maml-type, 1 for protonet, matching, r2d2)", 1, 100000},
        {"inner-steps", ARG_INT, &o->inner_steps, "meta: adaptation steps in training (default 1)", 0, 1000},
        {"inner-lr", ARG_FLOAT, &o->inner_lr, "meta: adaptation learning rate alpha (default 0.01)", 0, 1e3},
        {"outer-lr", ARG_FLOAT, &o->outer_lr, "meta: outer learning rate beta (default 1e-3)", 1e-12, 1e3},
        {"log-every", ARG_INT, &o->log_every, "meta: iterations per log line (default 100)", 1, 100000000},
        {"checkpoint-every", ARG_INT, &o->checkpoint_every, "meta: iterations per checkpoint (default 1000)", 1, 100000000},
        {"checkpoint-minutes", ARG_FLOAT, &o->checkpoint_minutes, "meta: also checkpoint when this many minutes passed since the last one, whichever comes first (default 5; 0: by iterations only)", 0, 1e6},
        {"val-every", ARG_INT, &o->val_every, "meta: every N iterations (a multiple of --log-every) log the validation metric as eval --split val scores it into log.jsonl: val_acc (few-shot) or val_mse (0 = off)", 0, 100000000},
        {"eval-tasks", ARG_INT, &o->eval_tasks, "meta: new tasks in the final evaluation (default 600; a CSV run uses each test task once; 0: none)", 0, 10000000},
        {"eval-query", ARG_INT, &o->eval_query, "meta: query points per evaluation task, or per class (default 100; 0 = all rows of a CSV task, or all images of the classes)", 0, 100000},
        {"eval-shots", ARG_STRING, &o->eval_shots, "meta: shots to evaluate, e.g. 5,10,20 (default: --shots)", 1, 0},
        {"eval-steps", ARG_STRING, &o->eval_steps, "meta: adaptation steps to report, e.g. 1,10 (default 1,10; pretrain: 100)", 1, 0},
        {"eval-seed", ARG_U64, &o->eval_seed, "meta: seed of the evaluation tasks (same for every run)", 0, 1.8e19},
        {"ways", ARG_INT, &o->ways, "few-shot: classes per episode, N (default 5)", 2, 256},
        {"eval-ways", ARG_INT, &o->eval_ways, "few-shot: classes per evaluation episode (default --ways)", 0, 256},
        {"rotations", ARG_INT, &o->rotations, "few-shot: 1 = rotations by 90/180/270 degrees as new training classes (default 1)", 0, 1},
        {"split-by", ARG_STRING, &o->split_by, "few-shot: split classes by character or by alphabet (default character)", 1, 0},
        {"split", ARG_STRING, &o->split, "few-shot classes / CSV tasks: train,val,test fractions (default 0.6,0.1,0.3)", 1, 0},
        {"augment-rotate", ARG_FLOAT, &o->aug_rotate, "few-shot training: random rotation in [-DEG, DEG] per image", 0, 180},
        {"augment-scale", ARG_STRING, &o->aug_scale, "few-shot training: random zoom MIN,MAX per image, e.g. 0.9,1.1", 1, 0},
        {"augment-translate", ARG_FLOAT, &o->aug_translate, "few-shot training: random shift up to PX pixels per axis", 0, 28},
        {"augment-flip", ARG_FLOAT, &o->aug_flip, "few-shot training: probability of a left-right flip per image", 0, 1},
        {"lake-runs", ARG_STRING, &o->lake_runs, "few-shot: also evaluate on Lake's 20 one-shot runs (all_runs.zip or folder)", 1, 0},
        {"lake-steps", ARG_INT, &o->lake_steps, "few-shot: adaptation steps before labelling Lake's runs (default 0: the largest --eval-steps)", 0, 100000},
        {"finetune", ARG_STRING, &o->finetune, "pretrain: at evaluation fine-tune the new head only (head, default) or the whole network (all)", 1, 0},
        {"task-sampler", ARG_STRING, &o->task_sampler, "few-shot training classes: uniform, similar (to --target) or curriculum (easy to hard)", 1, 0},
        {"target", ARG_STRING, &o->target, "similar: target images, DIR/class/NAME.png or test-support:K (first K images of each test class)", 1, 0},
        {"select-k", ARG_INT, &o->select_k, "similar: how many of the most similar training classes are favoured (default 50)", 1, 1 << 24},
        {"select-prob", ARG_FLOAT, &o->select_prob, "similar: probability that a class is drawn from those K (default 0.5)", 0, 1},
        {"select-every", ARG_INT, &o->select_every, "similar: iterations between re-rankings under the current model (default 100)", 1, 100000000},
        {"curriculum-strength", ARG_FLOAT, &o->curriculum_strength, "curriculum: weight exp(beta z), beta from -S to +S over the run (default 1)", 0, 20},
        {"matching-scale", ARG_FLOAT, &o->matching_scale, "matching: learn a scale of the cosines, starting here (default 0: none, as the paper)", 0, 1e3},
        {"test-alphabets", ARG_STRING, &o->test_alphabets, "few-shot: hold out these alphabets (comma list) as the test split; the rest train", 1, 0},
    };
    *n = (int)(sizeof table / sizeof table[0]);
    memcpy(specs, table, sizeof table);
    return specs;
}

/* The default evaluation steps depend on the algorithm: the transfer
 * baseline trains a new head from zero (Chen et al. fine-tune for 100
 * iterations), the meta-learners adapt in a few steps. The meta-batch is a
 * property of the learner (the library's). */
void train_opts_resolve(train_opts *o) {
    if (!o->eval_steps) o->eval_steps = o->algo && !strcmp(o->algo, "pretrain") ? "100" : "1,10";
    /* Supervised SGD is usually run with momentum; the outer step of
     * meta-learning is not (Reptile's outer SGD is plain interpolation). The
     * resolved value is what config.json records and what the optimizer gets. */
    if (o->momentum < 0) o->momentum = o->algo && !strcmp(o->algo, "supervised") ? 0.9f : 0.0f;
    if (o->weight_decay < 0) o->weight_decay = o->optimizer && !strcmp(o->optimizer, "adamw") ? 0.01f : 0.0f;
    ml_algo a;
    if (!o->meta_batch) o->meta_batch = o->algo && !ml_algo_parse(o->algo, &a) ? ml_algo_default_meta_batch(a) : 25;
}

int train_opts_load_run(train_opts *o, const char *dir, char *err, size_t errlen) {
    train_opts_defaults(o);
    int n;
    const arg_spec *specs = train_opts_table(o, &n);
    const arg_cmd cmd = {"train", train_synopsis, train_about, specs, n};
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (config_apply_file(&cmd, path, err, errlen)) return -1;
    o->overwrite = 0; /* reading a run never replaces any of it */
    fewshot_legacy_dataset(o, dir);
    train_opts_resolve(o);
    return 0;
}

/* Before --momentum reached the outer optimizer of meta-learning, a run's
 * config.json recorded the old default 0.9 while the outer step ran without
 * momentum, so its checkpoint has no momentum buffer. Such a run resumes as it
 * trained (momentum 0), and its config.json is rewritten to say so. */
static void legacy_meta_momentum(train_opts *o, const char *dir) {
    if (o->momentum <= 0 || !o->algo || !strcmp(o->algo, "supervised") || !o->optimizer ||
        (strcmp(o->optimizer, "sgd") && strcmp(o->optimizer, "rmsprop")))
        return;
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    ml_safetensors st;
    if (ml_safetensors_read(path, &st, err, sizeof err)) return; /* resume reports it */
    if (!ml_safetensors_find(&st, "optim.momentum_buffer")) {
        fprintf(stderr, "train: %s was trained before --momentum reached meta-learning: it ran without momentum, "
                        "and resumes so (config.json now says momentum 0)\n", dir);
        o->momentum = 0;
    }
    ml_safetensors_free(&st);
}

int cmd_train(int argc, char **argv) {
    static train_opts o;
    train_opts_defaults(&o);
    int n;
    const arg_spec *specs = train_opts_table(&o, &n);
    const arg_cmd cmd = {"train", train_synopsis, train_about, specs, n};
    char err[512];
    /* Settings files first (a run's own config when resuming), flags last. */
    const char *resume = args_find_value(argc, argv, 2, "resume");
    if (resume) {
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", resume);
        int r = config_apply_file(&cmd, path, err, sizeof err);
        if (r) {
            fprintf(stderr, "metalearn train: --resume: %s\n", err);
            return r == CONFIG_FILE_ERROR ? EXIT_FAIL : EXIT_USAGE;
        }
        o.json = o.quiet = 0; /* presentation flags come from this command line only */
        o.stop_at = 0;        /* and so does a stopping point */
        o.overwrite = 0;      /* and permission to replace a run */
        fewshot_legacy_dataset(&o, resume);
        legacy_meta_momentum(&o, resume);
    }
    const char *config = args_find_value(argc, argv, 2, "config");
    if (config) {
        int r = config_apply_file(&cmd, config, err, sizeof err);
        if (r) {
            fprintf(stderr, "metalearn train: %s\n", err);
            return r == CONFIG_FILE_ERROR ? EXIT_FAIL : EXIT_USAGE;
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
        train_opts_resolve(&o);
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
    train_opts_resolve(&o);
    return run_meta(&o, &cmd);
}
