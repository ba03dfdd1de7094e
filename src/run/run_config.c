/* run_config.c: a run's settings: defaults, the option table (names, bounds
 * and help shared by the CLI, config.json and the Python package), the
 * defaults that depend on other settings, and settings of older runs. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "metalearn/io.h"
#include "metalearn/meta.h"
#include "metalearn/run.h"
#include "metalearn/sources.h"

void ml_run_config_default(ml_run_config *o) {
    memset(o, 0, sizeof *o);
    o->algo = "supervised";
    o->init = "torch";
    o->seed = 1;
    o->dataset = NULL; /* supervised: fashion-mnist; meta-learning: --task */
    o->finetune = "head";
    o->remember = 15;
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
    o->meta_batch = 0; /* the learner's default, see ml_run_config_resolve */
    o->inner_steps = 1;
    o->inner_lr = -1; /* resolved: 0.01, meta-RL 0.1 (pytorch-maml-rl's fast-lr) */
    o->outer_lr = -1; /* resolved: 1e-3, meta-RL 0.01 (its Adam outer step) */
    o->log_every = 100;
    o->checkpoint_every = 1000;
    o->checkpoint_minutes = 5;
    o->eval_tasks = -1; /* resolved: 600, meta-RL 40 (the test tasks) */
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
    o->clients = 8;
    o->client_fraction = 1.0f;
    o->eval_later_scale = 1.0f;
    o->local_iters = 5;
    o->outer = "trpo";
    o->rollouts = 20;
}

/* The sources --dataset takes, from the source table. */
static const char *dataset_help(void) {
    static _Thread_local char help[400];
    char sup[128], all[256];
    snprintf(help, sizeof help, "supervised: %s (default: fashion-mnist); few-shot: %s",
             ml_source_list(sup, sizeof sup, ML_SOURCE_IMAGES, 1, " or "),
             ml_source_list(all, sizeof all, ML_SOURCE_IMAGES, 0, " or "));
    return help;
}

/* "supervised, maml, ... or pretrain", from the learner table. */
static const char *algo_help(void) {
    static _Thread_local char help[320];
    char names[256];
    snprintf(help, sizeof help, "supervised, %s", ml_algo_list(names, sizeof names, " or "));
    return help;
}

/* The table points into one config at a time; one table per thread, so that
 * threads binding their own configs (Python's RunConfig, runs opened side by
 * side) never write into each other's. */
const ml_option *ml_run_config_options(ml_run_config *o, int *n) {
    static _Thread_local ml_option specs[80];
    const ml_option table[] = {
        {"algo", ML_OPT_STRING, &o->algo, algo_help(), 1, 0},
        {"model", ML_OPT_STRING, &o->model, "mlp[:W1,W2,...] or cnn4[:FILTERS] (default mlp for supervised, mlp:40,40 for tasks)", 1, 0},
        {"init", ML_OPT_STRING, &o->init, "torch, kaiming, xavier, or FILE.safetensors to start from given parameters", 1, 0},
        {"seed", ML_OPT_U64, &o->seed, "random seed (initialisation, shuffling, tasks)", 0, 1.8e19},
        {"threads", ML_OPT_INT, &o->threads, "threads (default: all cores)", 0, 1024},
        {"config", ML_OPT_STRING, &o->config, "read settings from a JSON file (flags override it)", 1, 0},
        {"out", ML_OPT_STRING, &o->out, "run folder for config, log, checkpoints, evaluation", 1, 0},
        {"resume", ML_OPT_STRING, &o->resume, "continue the run in this folder", 1, 0},
        {"overwrite", ML_OPT_FLAG, &o->overwrite, "let --out replace a run already there (otherwise refused: use --resume or another folder)", 0, 0},
        {"json", ML_OPT_FLAG, &o->json, "print the final metrics as JSON on the last line", 0, 0},
        {"quiet", ML_OPT_FLAG, &o->quiet, "no progress output on stderr", 0, 0},
        {"dataset", ML_OPT_STRING, &o->dataset, dataset_help(), 1, 0},
        {"epochs", ML_OPT_INT, &o->epochs, "supervised: passes over the training set (default 10)", 1, 100000},
        {"batch-size", ML_OPT_INT, &o->batch_size, "supervised: examples per step (default 64)", 2, 1 << 20},
        {"lr", ML_OPT_FLOAT, &o->lr, "supervised: learning rate (default 1e-3)", 1e-12, 1e3},
        {"optimizer", ML_OPT_STRING, &o->optimizer, "sgd, adagrad, rmsprop, adam or adamw (also the outer optimizer)", 1, 0},
        {"momentum", ML_OPT_FLOAT, &o->momentum, "SGD/RMSprop momentum (default 0.9 for supervised, 0 for the outer optimizer of meta-learning)", 0, 0.9999},
        {"weight-decay", ML_OPT_FLOAT, &o->weight_decay, "weight decay (default 0; adamw 0.01)", 0, 10},
        {"schedule", ML_OPT_STRING, &o->schedule, "learning-rate schedule over the steps (supervised) or outer iterations (meta): constant, step (x0.1 every third) or cosine (to 0)", 1, 0},
        {"clip", ML_OPT_FLOAT, &o->clip, "supervised: clip gradients to this global L2 norm (0 = off)", 0, 1e9},
        {"limit", ML_OPT_INT, &o->limit, "supervised: use only the first N training examples (0 = all)", 0, 1 << 30},
        {"shards", ML_OPT_INT, &o->shards, "supervised: cut each minibatch into G shards, each with its own forward/backward and batch-norm statistics, summed in shard order; spread over --threads and mpirun processes, the result depends on G only (default 1; under mpirun: the number of processes)", 0, 1 << 20},
        {"task", ML_OPT_STRING, &o->task, "meta: sinusoid, linear[:D] or csv:FILE", 1, 0},
        {"shots", ML_OPT_INT, &o->shots, "meta: support points per task, K (default 10)", 1, 100000},
        {"query", ML_OPT_INT, &o->query, "meta: query points per training task, or per class in episodes (default 10; 0 = all rows of a CSV task)", 0, 100000},
        {"iters", ML_OPT_INT, &o->iters, "meta: outer iterations (default 20000)", 1, 100000000},
        {"stop-at", ML_OPT_INT, &o->stop_at, "meta: stop after this iteration with a checkpoint, to --resume later (--iters still sets the schedule)", 0, 100000000},
        {"meta-batch", ML_OPT_INT, &o->meta_batch, "meta: tasks per outer update (default: the learner's, listed by train --help)", 1, 100000},
        {"inner-steps", ML_OPT_INT, &o->inner_steps, "meta: adaptation steps in training (default 1)", 0, 1000},
        {"inner-lr", ML_OPT_FLOAT, &o->inner_lr, "meta: adaptation learning rate alpha (default 0.01; meta-RL 0.1)", 0, 1e3},
        {"outer-lr", ML_OPT_FLOAT, &o->outer_lr, "meta: outer learning rate beta (default 1e-3; meta-RL --outer adam 0.01)", 1e-12, 1e3},
        {"log-every", ML_OPT_INT, &o->log_every, "meta: iterations per log line (default 100)", 1, 100000000},
        {"checkpoint-every", ML_OPT_INT, &o->checkpoint_every, "meta: iterations per checkpoint (default 1000)", 1, 100000000},
        {"checkpoint-minutes", ML_OPT_FLOAT, &o->checkpoint_minutes, "meta: also checkpoint when this many minutes passed since the last one, whichever comes first (default 5; 0: by iterations only)", 0, 1e6},
        {"val-every", ML_OPT_INT, &o->val_every, "meta: every N iterations (a multiple of --log-every) log the validation metric as eval --split val scores it into log.jsonl: val_acc (few-shot) or val_mse (0 = off)", 0, 100000000},
        {"eval-tasks", ML_OPT_INT, &o->eval_tasks, "meta: new tasks in the final evaluation (default 600, meta-RL 40; a CSV run uses each test task once; 0: none)", 0, 10000000},
        {"eval-query", ML_OPT_INT, &o->eval_query, "meta: query points per evaluation task, or per class (default 100; 0 = all rows of a CSV task, or all images of the classes)", 0, 100000},
        {"eval-shots", ML_OPT_STRING, &o->eval_shots, "meta: shots to evaluate, e.g. 5,10,20 (default: --shots)", 1, 0},
        {"eval-steps", ML_OPT_STRING, &o->eval_steps, "meta: adaptation steps to report, e.g. 1,10 (default: the learner's, 1,10; pretrain: 100)", 1, 0},
        {"eval-seed", ML_OPT_U64, &o->eval_seed, "meta: seed of the evaluation tasks (same for every run)", 0, 1.8e19},
        {"ways", ML_OPT_INT, &o->ways, "few-shot: classes per episode, N (default 5)", 2, 256},
        {"eval-ways", ML_OPT_INT, &o->eval_ways, "few-shot: classes per evaluation episode (default --ways)", 0, 256},
        {"rotations", ML_OPT_INT, &o->rotations, "few-shot: 1 = rotations by 90/180/270 degrees as new training classes (default 1)", 0, 1},
        {"split-by", ML_OPT_STRING, &o->split_by, "few-shot: split classes by character or by alphabet (default character)", 1, 0},
        {"split", ML_OPT_STRING, &o->split, "few-shot classes / CSV tasks: train,val,test fractions (default 0.6,0.1,0.3)", 1, 0},
        {"augment-rotate", ML_OPT_FLOAT, &o->aug_rotate, "few-shot training: random rotation in [-DEG, DEG] per image", 0, 180},
        {"augment-scale", ML_OPT_STRING, &o->aug_scale, "few-shot training: random zoom MIN,MAX per image, e.g. 0.9,1.1", 1, 0},
        {"augment-translate", ML_OPT_FLOAT, &o->aug_translate, "few-shot training: random shift up to PX pixels per axis", 0, 28},
        {"augment-flip", ML_OPT_FLOAT, &o->aug_flip, "few-shot training: probability of a left-right flip per image", 0, 1},
        {"lake-runs", ML_OPT_STRING, &o->lake_runs, "few-shot: also evaluate on Lake's 20 one-shot runs (all_runs.zip or folder)", 1, 0},
        {"lake-steps", ML_OPT_INT, &o->lake_steps, "few-shot: adaptation steps before labelling Lake's runs (default 0: the largest --eval-steps)", 0, 100000},
        {"finetune", ML_OPT_STRING, &o->finetune, "pretrain: at evaluation fine-tune the new head only (head, default) or the whole network (all)", 1, 0},
        {"task-sampler", ML_OPT_STRING, &o->task_sampler, "few-shot training classes: uniform, similar (to --target) or curriculum (easy to hard)", 1, 0},
        {"target", ML_OPT_STRING, &o->target, "similar: target images, DIR/class/NAME.png or test-support:K (first K images of each test class)", 1, 0},
        {"select-k", ML_OPT_INT, &o->select_k, "similar: how many of the most similar training classes are favoured (default 50)", 1, 1 << 24},
        {"select-prob", ML_OPT_FLOAT, &o->select_prob, "similar: probability that a class is drawn from those K (default 0.5)", 0, 1},
        {"select-every", ML_OPT_INT, &o->select_every, "similar: iterations between re-rankings under the current model (default 100)", 1, 100000000},
        {"curriculum-strength", ML_OPT_FLOAT, &o->curriculum_strength, "curriculum: weight exp(beta z), beta from -S to +S over the run (default 1)", 0, 20},
        {"remember", ML_OPT_INT, &o->remember, "oml on images: random images of all training classes added to each trajectory's meta-loss, scored by a head over every training class (default 15, as the paper; 0: the trajectory and its query images only)", 0, 100000},
        {"low-memory", ML_OPT_FLAG, &o->low_memory, "less memory, same result: on several threads every learner runs the meta-batch's tasks one at a time with the threads inside each task (one worker's memory; slower); maml, anil, metasgd on a CNN whose first conv block is not already lean (more than 3 input channels, or --exact-first-block) also keep only its output and batch-norm values for the query set and compute its convolution again", 0, 0},
        {"exact-first-block", ML_OPT_FLAG, &o->exact_first_block, "maml, anil, metasgd on a CNN of 1-3 input channels: differentiate the query set's first conv block through its convolution's output (as before the lean route: more memory, the older runs' exact arithmetic) instead of from the images' patch moments", 0, 0},
        {"matching-scale", ML_OPT_FLOAT, &o->matching_scale, "matching: learn a scale of the cosines, starting here (default 0: none, as the paper)", 0, 1e3},
        {"test-alphabets", ML_OPT_STRING, &o->test_alphabets, "few-shot: hold out these alphabets (comma list) as the test split; the rest train", 1, 0},
        {"federated", ML_OPT_FLAG, &o->federated, "federated meta-learning: clients with private tasks (Omniglot: training alphabets dealt to clients; sinusoid: an amplitude range each), FedAvg of the meta-parameters per round", 0, 0},
        {"clients", ML_OPT_INT, &o->clients, "federated: clients K (default 8; Omniglot: at most the training alphabets)", 0, 4096},
        {"client-fraction", ML_OPT_FLOAT, &o->client_fraction, "federated: fraction of the clients a round samples (seeded; default 1)", 0, 1e3},
        {"local-iters", ML_OPT_INT, &o->local_iters, "federated: outer iterations a client runs on its own tasks per round, E (default 5)", 1, 100000},
        {"env", ML_OPT_STRING, &o->env, "meta-RL: environment, nav2d, bandit:K or nav2d-rot (with --algo maml, fomaml, pretrain, oracle or random)", 1, 0},
        {"rollouts", ML_OPT_INT, &o->rollouts, "meta-RL: trajectories per task and phase (default 20)", 1, 100000},
        {"horizon", ML_OPT_INT, &o->horizon, "meta-RL: steps per trajectory (default 0: the environment's, nav2d 100)", 0, 1000000},
        {"outer", ML_OPT_STRING, &o->outer, "meta-RL: outer step, trpo (default) or adam (at --outer-lr)", 1, 0},
        {"eval-later-scale", ML_OPT_FLOAT, &o->eval_later_scale, "meta-RL evaluation: adaptation steps after the first use the rate times this (default 1; the MAML authors' evaluation halves it: 0.5)", 0, 1e3},
        {"eval-lr", ML_OPT_STRING, &o->eval_lr, "meta-RL evaluation: adaptation rate, or a comma list of rates of which the best on validation tasks is used (default: --inner-lr)", 1, 0},
        {"rounds", ML_OPT_INT, &o->rounds, "federated: rounds (sets --iters: an outer iteration of a federated run is a round)", 0, 100000000},
    };
    *n = (int)(sizeof table / sizeof table[0]);
    memcpy(specs, table, sizeof table);
    return specs;
}

/* The default evaluation steps and meta-batch are the learner's (its row of
 * the learner table): the transfer baseline trains a new head from zero
 * (Chen et al. fine-tune for 100 iterations), the meta-learners adapt in a
 * few steps. */
void ml_run_config_resolve(ml_run_config *o) {
    if (o->inner_lr < 0) o->inner_lr = o->env ? 0.1f : 0.01f;
    if (o->outer_lr < 0) o->outer_lr = o->env ? 0.01f : 1e-3f;
    if (o->eval_tasks < 0) o->eval_tasks = o->env ? 40 : 600;
    if (o->env) { /* meta-RL: pytorch-maml-rl's 2d-navigation defaults */
        if (!o->eval_steps) o->eval_steps = "0,1,2,3";
        if (!o->meta_batch) o->meta_batch = 20;
    }
    ml_algo a;
    int known = o->algo && !ml_algo_parse(o->algo, &a);
    if (!o->eval_steps) o->eval_steps = known ? ml_algo_info(a)->default_eval_steps : "1,10";
    /* Supervised SGD is usually run with momentum; the outer step of
     * meta-learning is not (Reptile's outer SGD is plain interpolation). The
     * resolved value is what config.json records and what the optimizer gets. */
    if (o->momentum < 0) o->momentum = o->algo && !strcmp(o->algo, "supervised") ? 0.9f : 0.0f;
    if (o->weight_decay < 0) o->weight_decay = o->optimizer && !strcmp(o->optimizer, "adamw") ? 0.01f : 0.0f;
    if (!o->meta_batch) o->meta_batch = known ? ml_algo_default_meta_batch(a) : 25;
    if (o->federated && o->rounds > 0) o->iters = o->rounds;
}

ml_option_set ml_run_config_option_set(ml_run_config *c) {
    int n;
    const ml_option *opts = ml_run_config_options(c, &n);
    return (ml_option_set){"train", "", "", opts, n};
}

/* A run written before few-shot IDX sets existed stored the supervised
 * default "fashion-mnist" as its dataset; without a split.json it is a
 * regression run. */
static int legacy_dataset(ml_run_config *o, const char *dir) {
    if (!o->dataset || !o->algo || !strcmp(o->algo, "supervised") || strncmp(o->dataset, "omniglot:", 9) == 0)
        return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/split.json", dir);
    if (access(path, F_OK) == 0) return 0;
    o->dataset = NULL;
    return 1;
}

int ml_run_config_load_run(ml_run_config *o, const char *dir, char *err, size_t errlen) {
    ml_run_config_default(o);
    ml_option_set set = ml_run_config_option_set(o);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (ml_options_apply_file(&set, path, err, errlen)) return -1;
    o->overwrite = 0; /* reading a run never replaces any of it */
    legacy_dataset(o, dir);
    ml_run_config_resolve(o);
    return 0;
}

/* Before --momentum reached the outer optimizer of meta-learning, a run's
 * config.json recorded the old default 0.9 while the outer step ran without
 * momentum, so its checkpoint has no momentum buffer. Such a run resumes as it
 * trained (momentum 0), and its config.json is rewritten to say so. */
static int legacy_meta_momentum(ml_run_config *o, const char *dir, char *note, size_t notelen) {
    if (o->momentum <= 0 || !o->algo || !strcmp(o->algo, "supervised") || !o->optimizer ||
        (strcmp(o->optimizer, "sgd") && strcmp(o->optimizer, "rmsprop")))
        return 0;
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    ml_safetensors st;
    if (ml_safetensors_read(path, &st, err, sizeof err)) return 0; /* resume reports it */
    int legacy = !ml_safetensors_find(&st, "optim.momentum_buffer");
    ml_safetensors_free(&st);
    if (!legacy) return 0;
    snprintf(note, notelen, "%s was trained before --momentum reached meta-learning: it ran without momentum, "
                            "and resumes so (config.json now says momentum 0)", dir);
    o->momentum = 0;
    return 1;
}

int ml_run_config_legacy(ml_run_config *c, const char *dir, char *note, size_t notelen) {
    if (notelen) note[0] = 0;
    legacy_dataset(c, dir); /* says nothing: the run simply is a regression run */
    return legacy_meta_momentum(c, dir, note, notelen);
}

