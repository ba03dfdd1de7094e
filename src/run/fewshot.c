/* fewshot.c: the few-shot classification side of a meta-learning run:
 * Omniglot loading, the class split (written to RUN/split.json and reused),
 * episode sampling for training, and the final evaluation: accuracy with a
 * 95% confidence interval over episodes of held-out classes, and Lake's 20
 * within-alphabet one-shot runs. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <unistd.h>

#include "run/meta_run.h"
#include "metalearn/dist.h"
#include "run/task_select.h"
#include "metalearn/eval.h"
#include "metalearn/io.h"
#include "metalearn/pool.h"
#include "metalearn/sources.h"

#define MAX_PATHS 8
#define MAX_LIST 16

int fewshot_is_dataset(const char *dataset) {
    const ml_source_info *src = ml_source_find(dataset, NULL);
    return src && src->kind == ML_SOURCE_IMAGES;
}

int ml_run_dataset_is_fewshot(const char *dataset) { return fewshot_is_dataset(dataset); }

/* No head of its own: any number of ways at evaluation. */
static int any_ways(ml_algo a) { return ml_algo_info(a)->any_ways; }

/* The image set a --dataset spec names, at the model's input size.
 * test_images: IDX sources read their t10k files instead of train. */
static int load_images(const char *spec, int test_images, ml_image_set *out, char *err, size_t errlen) {
    ml_image_options opt = {.size = ML_IMAGE_DEFAULT_SIZE};
    ml_status st = ml_source_load_images(spec, test_images, &opt, out, err, errlen);
    return st == ML_ERR_ARG ? ML__RUN_USAGE : st ? ML__RUN_FAIL : 0;
}

/* Evaluation classes: every class of the set (eval --eval-classes all, the
 * default for another dataset than the run's) in the test part. */
static int split_all_test(meta_run *r, char *err, size_t errlen) {
    if (ml_class_list_all(&r->images, &r->split.part[ML_SPLIT_TEST]) != ML_OK) {
        snprintf(err, errlen, "out of memory for the class lists");
        return ML__RUN_FAIL;
    }
    r->split.unit = ML_SPLIT_BY_CHARACTER;
    r->all_classes = 1;
    return 0;
}


/* --test-alphabets A,B: those alphabets are the test split, every other
 * alphabet trains (no validation part). */
static int split_by_test_alphabets(const ml_image_set *s, const char *names, ml_class_split *sp, char *err,
                                   size_t errlen) {
    memset(sp, 0, sizeof *sp);
    sp->unit = ML_SPLIT_BY_ALPHABET;
    char *is_test = calloc((size_t)s->n_alphabets + 1, 1), list[2048];
    if (!is_test) {
        snprintf(err, errlen, "out of memory");
        return ML__RUN_FAIL;
    }
    snprintf(list, sizeof list, "%s", names);
    for (char *p = strtok(list, ","); p; p = strtok(NULL, ",")) {
        int found = -1;
        for (int a = 0; a < s->n_alphabets; a++)
            if (!strcmp(s->alphabet_names[a], p)) found = a;
        if (found < 0) {
            size_t off = (size_t)snprintf(err, errlen, "--test-alphabets: no alphabet '%s' in the data (have:", p);
            for (int a = 0; a < s->n_alphabets && off < errlen; a++)
                off += (size_t)snprintf(err + off, errlen - off, " %s", s->alphabet_names[a]);
            if (off < errlen) snprintf(err + off, errlen - off, ")");
            free(is_test);
            return ML__RUN_USAGE;
        }
        is_test[found] = 1;
    }
    int n_test = 0;
    for (int c = 0; c < s->n_classes; c++) n_test += is_test[s->class_alphabet[c]];
    if (n_test == s->n_classes) {
        snprintf(err, errlen, "--test-alphabets %s: leaves no alphabet to train on", names);
        free(is_test);
        return ML__RUN_USAGE;
    }
    int counts[ML_SPLIT_COUNT] = {s->n_classes - n_test, 0, n_test};
    for (int k = 0; k < ML_SPLIT_COUNT; k++) {
        sp->part[k].items = ml_malloc((size_t)(counts[k] ? counts[k] : 1) * sizeof(ml_class_ref));
        if (!sp->part[k].items) {
            ml_class_split_free(sp);
            free(is_test);
            snprintf(err, errlen, "out of memory");
            return ML__RUN_FAIL;
        }
    }
    for (int c = 0; c < s->n_classes; c++) {
        ml_class_list *l = &sp->part[is_test[s->class_alphabet[c]] ? ML_SPLIT_TEST : ML_SPLIT_TRAIN];
        l->items[l->n++] = (ml_class_ref){c, 0};
    }
    free(is_test);
    return 0;
}

/* Every episode shape the run will draw, checked against the classes it
 * draws them from before the first iteration (not after hours of training):
 * the training episodes, each evaluation shot count on the test (or, for
 * eval --split val, validation) classes, and Lake's runs' ways. */
static int check_episode_shapes(meta_run *r, const ml_run_config *o, char *err, size_t errlen) {
    char why[512];
    if (!o->eval_only && o->query < 1) {
        snprintf(err, errlen, "--query %d: episodes need a number of queries per class (0 = all rows is for CSV tasks)",
                 o->query);
        return ML__RUN_USAGE;
    }
    if (!o->eval_only && !ml_algo_info(r->algo)->batch_training &&
        ml_episode_check(&r->images, &r->train_classes, o->ways, o->shots + o->query, why, sizeof why)) {
        snprintf(err, errlen, "--ways %d --shots %d --query %d: the training classes of %s: %s (see --split)", o->ways,
                 o->shots, o->query, r->data_name, why);
        return ML__RUN_FAIL;
    }
    int ways = o->eval_ways > 0 ? o->eval_ways : o->ways;
    if (!any_ways(r->algo) && ways != o->ways) {
        snprintf(err, errlen, "%s %d: a %s model has a %d-way head", meta_eval_option(o, "--eval-ways", "--ways"), ways,
                 ml_algo_name(r->algo), o->ways);
        return ML__RUN_USAGE;
    }
    if (o->eval_tasks > 0) {
        int shots[MAX_LIST], n = o->eval_shots ? ml__parse_int_list(o->eval_shots, shots, MAX_LIST, 1) : 1;
        if (!o->eval_shots) shots[0] = o->shots;
        const char *part = r->all_classes ? "classes" : o->eval_val ? "validation classes" : "test classes";
        const ml_class_list *list = &r->split.part[o->eval_val && !r->all_classes ? ML_SPLIT_VAL : ML_SPLIT_TEST];
        if (list->n == 0) {
            snprintf(err, errlen, "evaluation: the %s split of %s has no classes (see --split)",
                     o->eval_val ? "validation" : "test", r->data_name);
            return ML__RUN_FAIL;
        }
        for (int i = 0; i < n; i++) /* at least one query per class beside the shots */
            if (ml_episode_check(&r->images, list, ways, shots[i] + 1, why, sizeof why)) {
                snprintf(err, errlen, "evaluation (%s %d, %s %d) on the %s of %s: %s%s",
                         meta_eval_option(o, "--eval-ways", "--ways"), ways,
                         meta_eval_option(o, "--eval-shots", "--shots"), shots[i], part, r->data_name, why,
                         r->all_classes ? "" : " (see --split)");
                return ML__RUN_FAIL;
            }
    }
    if (o->lake_runs) {
        ml_lake_runs lr;
        ml_image_options opt = {.size = r->images.size};
        if (ml_lake_runs_load(o->lake_runs, &opt, &lr, why, sizeof why)) {
            snprintf(err, errlen, "--lake-runs: %s", why);
            return ML__RUN_FAIL;
        }
        int lake_ways = lr.n_train;
        ml_lake_runs_free(&lr);
        if (!any_ways(r->algo) && lake_ways != o->ways) {
            snprintf(err, errlen, "--lake-runs: the runs are %d-way; a %s model with a %d-way head cannot label them "
                                  "(train with --ways %d)", lake_ways, ml_algo_name(r->algo), o->ways, lake_ways);
            return ML__RUN_FAIL;
        }
    }
    return 0;
}

int fewshot_setup(meta_run *r, const ml_run_config *o, ml_model_spec *spec, char *err, size_t errlen) {
    r->ways = o->ways;
    if (o->model_only) { /* predict: the model's shape only */
        spec->in_c = 1;
        spec->in_h = spec->in_w = ML_IMAGE_DEFAULT_SIZE;
        spec->n_out = any_ways(r->algo) ? 0 : o->ways;
        return 0;
    }
    /* eval --dataset: another set (or the same one afresh, IDX test files). */
    const char *data = o->eval_dataset ? o->eval_dataset : o->dataset;
    int other = o->eval_dataset && strcmp(o->eval_dataset, o->dataset);
    const char *classes = o->eval_classes ? o->eval_classes : other && !o->eval_split_file ? "all" : "test";
    if (o->eval_split_file && strcmp(classes, "test")) {
        snprintf(err, errlen, "--split-file gives test classes; it does not go with --eval-classes %s", classes);
        return ML__RUN_USAGE;
    }
    r->data_name = data;
    if (strcmp(classes, "all") && strcmp(classes, "test")) {
        snprintf(err, errlen, "--eval-classes '%s': expected all or test", classes);
        return ML__RUN_USAGE;
    }
    ml_split_spec ss = {0};
    if (!strcmp(o->split_by, "character")) ss.unit = ML_SPLIT_BY_CHARACTER;
    else if (!strcmp(o->split_by, "alphabet")) ss.unit = ML_SPLIT_BY_ALPHABET;
    else {
        snprintf(err, errlen, "--split-by '%s': expected character or alphabet", o->split_by);
        return ML__RUN_USAGE;
    }
    const ml_source_info *src = ml_source_find(data, NULL);
    if (ss.unit == ML_SPLIT_BY_ALPHABET && !(src && src->has_alphabets)) {
        snprintf(err, errlen, "--split-by alphabet: only Omniglot has alphabets; %s has one class per label or "
                              "folder (use --split-by character)", data);
        return ML__RUN_USAGE;
    }
    if (ml__parse_split_fractions(o->split, ss.fractions)) {
        snprintf(err, errlen, "--split '%s': expected three fractions train,val,test summing to at most 1", o->split);
        return ML__RUN_USAGE;
    }
    r->augment = (ml_augment){.rotate_deg = o->aug_rotate, .translate = o->aug_translate, .flip_h = o->aug_flip};
    if (o->aug_scale) {
        char *end;
        r->augment.scale_min = strtod(o->aug_scale, &end);
        r->augment.scale_max = *end == ',' ? strtod(end + 1, &end) : -1;
        if (*end || !(r->augment.scale_min > 0) || r->augment.scale_max < r->augment.scale_min) {
            snprintf(err, errlen, "--augment-scale '%s': expected MIN,MAX with 0 < MIN <= MAX, e.g. 0.9,1.1", o->aug_scale);
            return ML__RUN_USAGE;
        }
    }
    double t0 = ml_now();
    int test_images = o->eval_dataset && !(o->eval_images && !strcmp(o->eval_images, "train"));
    int st_load = load_images(data, test_images, &r->images, err, errlen);
    if (st_load) return st_load;
    /* The run reads its images through ml_image_set_copy only: the exact
     * compact form (Omniglot 28x28: 7.6 instead of 15.2 MB) */
    if (ml_image_set_compact(&r->images) != ML_OK) {
        snprintf(err, errlen, "out of memory for the images");
        return ML__RUN_FAIL;
    }
    if (!o->quiet)
        if (r->notes) fprintf(r->notes, "data: %s: %d classes in %d alphabets, %lld images (%dx%d) in %.2f s\n", data,
                r->images.n_classes, r->images.n_alphabets, (long long)r->images.n, r->images.size, r->images.size,
                ml_now() - t0);
    /* A run folder's split is made once and then read back, so resume and
     * eval see exactly the classes the run was trained on. Another
     * dataset's split is made in memory (same settings and seed) and never
     * written. */
    char path[4200];
    snprintf(path, sizeof path, "%s/split.json", r->dir);
    if (!strcmp(classes, "all")) {
        int st_all = split_all_test(r, err, errlen);
        if (st_all) return st_all;
    } else if (o->eval_split_file) { /* e.g. another run's split.json: the very same test classes */
        if (ml_class_split_read_json(o->eval_split_file, &r->images, &r->split, err, errlen)) return ML__RUN_FAIL;
    } else if (other) {
        ml_rng split_rng;
        ml_rng_seed(&split_rng, o->seed ^ 0x73706c6974ULL);
        if (ml_class_split_make(&r->images, &ss, &split_rng, &r->split, err, errlen)) return ML__RUN_FAIL;
    } else if (access(path, F_OK) == 0 && !o->overwrite) { /* --overwrite: a new split replaces the old run's */
        if (ml_class_split_read_json(path, &r->images, &r->split, err, errlen)) return ML__RUN_FAIL;
    } else {
        ml_rng split_rng;
        ml_rng_seed(&split_rng, o->seed ^ 0x73706c6974ULL);
        if (o->test_alphabets) {
            int st = split_by_test_alphabets(&r->images, o->test_alphabets, &r->split, err, errlen);
            if (st) return st;
        } else if (ml_class_split_make(&r->images, &ss, &split_rng, &r->split, err, errlen))
            return ML__RUN_FAIL;
        r->split_unsaved = 1; /* written by meta_run_save_split once the setup has succeeded */
    }
    const ml_class_list *train = &r->split.part[ML_SPLIT_TRAIN];
    ml_status st = ML_OK;
    if (o->rotations) {
        st = ml_class_list_expand_rotations(train, &r->train_classes);
    } else {
        r->train_classes.items = ml_malloc((size_t)(train->n ? train->n : 1) * sizeof(ml_class_ref));
        if (!r->train_classes.items) st = ML_ERR_NOMEM;
        else {
            if (train->n) memcpy(r->train_classes.items, train->items, (size_t)train->n * sizeof(ml_class_ref));
            r->train_classes.n = train->n;
        }
    }
    if (st != ML_OK) {
        snprintf(err, errlen, "out of memory for the class lists");
        return ML__RUN_FAIL;
    }
    if (!o->eval_only && o->ways > r->train_classes.n) {
        snprintf(err, errlen, "--ways %d: the training split has only %d classes", o->ways, r->train_classes.n);
        return ML__RUN_FAIL;
    }
    r->ways = o->ways;
    int st_shapes = check_episode_shapes(r, o, err, errlen);
    if (st_shapes) return st_shapes;
    spec->in_c = 1;
    spec->in_h = spec->in_w = r->images.size;
    spec->n_out = any_ways(r->algo) ? 0 : o->ways;
    r->episodes = calloc((size_t)o->meta_batch, sizeof *r->episodes);
    if (!r->episodes) {
        snprintf(err, errlen, "out of memory");
        return ML__RUN_FAIL;
    }
    /* Without image buffers: drawn episodes (fewshot_sample_batch) never
     * need them, the others get them at their first draw (with_images). */
    for (int i = 0; i < o->meta_batch; i++)
        if (ml_episode_init_drawn(&r->episodes[i], o->ways, o->shots, o->query, r->images.size)) {
            snprintf(err, errlen, "out of memory for %d episodes", o->meta_batch);
            return ML__RUN_FAIL;
        }
    return 0;
}

void fewshot_free(meta_run *r) {
    if (r->selector) task_select_free(r->selector);
    free(r->selector);
    r->selector = NULL;
    if (r->episodes)
        for (int i = 0; i < r->meta_batch; i++) ml_episode_free(&r->episodes[i]);
    free(r->episodes);
    r->episodes = NULL;
    free(r->fill_x);
    r->fill_x = NULL;
    ml_class_list_free(&r->train_classes);
    ml_class_split_free(&r->split);
    ml_image_set_free(&r->images);
}

/* A drawn episode's images (ml_episode_draw_weighted: the draws of
 * ml_episode_sample, the same stream) copied on the run's threads, rows
 * split evenly: an evaluation episode's 400 copies (1.25 MB written to
 * lines the forward had evicted) took ~0.26 ms per episode on one thread,
 * serial before the threads' forward. Rows take no draws: the same images
 * on any thread count. */
static int fill_on_threads(const ml_episode *e, const ml_image_set *s, int threads, char *why, size_t len) {
    const int rows = e->ways * (e->shots + e->queries);
    int bad = 0;
    /* Never more than OpenMP's budget here: 1 in a child forked by `search`
     * (runner.c), where libgomp cannot start threads. */
    if (threads > omp_get_max_threads()) threads = omp_get_max_threads();
    if (threads < 2 || rows < 64) {
        bad = ml_episode_fill(e, s, e->xs, e->xq) != ML_OK;
    } else {
#pragma omp parallel num_threads(threads) reduction(| : bad)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            bad |= ml_episode_fill_rows(e, s, e->xs, e->xq, rows * t / nt, rows * (t + 1) / nt) != ML_OK;
        }
    }
    if (bad) snprintf(why, len, "episode: its images could not be copied");
    return bad;
}

static ml_task_data episode_view(const ml_episode *e) {
    return (ml_task_data){.n_support = e->ways * e->shots,
                          .n_query = e->ways * e->queries,
                          .ways = e->ways,
                          .xs = e->xs,
                          .xq = e->xq,
                          .ls = e->ys,
                          .lq = e->yq};
}

/* OML's class head: task i's classes as training-class indices and its
 * remembered batch, images drawn uniformly from all training classes (a
 * class, then one of its images), as the pretrain minibatches are. */
static int remembered_batch(meta_run *r, int i, char *err, size_t errlen) {
    const ml_class_list *cl = &r->train_classes;
    const ml_episode *e = &r->episodes[i];
    const int64_t plane = (int64_t)r->images.size * r->images.size;
    int32_t *classes = r->task_classes + (int64_t)i * e->ways, *y = r->rem_y + (int64_t)i * r->remember;
    float *x = r->rem_x + (int64_t)i * r->remember * plane;
    for (int k = 0; k < e->ways; k++) classes[k] = e->class_index[k];
    for (int b = 0; b < r->remember; b++) {
        int k = (int)ml_rng_below(&r->rng, (uint32_t)cl->n);
        const ml_class_ref c = cl->items[k];
        int64_t first = r->images.class_start[c.cls], have = r->images.class_start[c.cls + 1] - first;
        int64_t idx = first + (int64_t)ml_rng_below(&r->rng, (uint32_t)have);
        if (ml_image_set_copy(&r->images, idx, c.rot, &r->augment, &r->rng, x + b * plane) != ML_OK) {
            snprintf(err, errlen, "remembered images: image %lld of class %s could not be copied", (long long)idx,
                     r->images.class_names[c.cls]);
            return ML__RUN_FAIL;
        }
        y[b] = k;
    }
    r->batch[i].classes = classes;
    r->batch[i].n_remember = r->remember;
    r->batch[i].xr = x;
    r->batch[i].lr = y;
    return 0;
}

static int64_t episode_floats(const ml_episode *e) {
    return (int64_t)e->ways * (e->shots + e->queries) * e->size * e->size;
}

/* Worker `worker` copies task item's images into its slot just before it
 * runs the task (ml_meta prepare_task). The draws were validated when made,
 * so the copies cannot fail. */
static void fill_episode(int item, int worker, void *user) {
    meta_run *r = user;
    const ml_episode *e = &r->episodes[item];
    float *xs = r->fill_x + (int64_t)worker * episode_floats(e);
    float *xq = xs + (int64_t)e->ways * e->shots * e->size * e->size;
    (void)ml_episode_fill(e, &r->images, xs, xq);
    r->batch[item].xs = xs;
    r->batch[item].xq = xq;
}

/* The episodes' own image buffers, made at the first draw that copies
 * images (augmentation, OML's remembered batch, a federated client's
 * tasks); 0 or -1 (out of memory). */
static int with_images(meta_run *r, char *err, size_t errlen) {
    for (int i = 0; i < r->meta_batch; i++) {
        ml_episode *e = &r->episodes[i];
        if (e->xs) continue;
        int ways = e->ways, shots = e->shots, queries = e->queries, size = e->size;
        ml_episode_free(e);
        if (ml_episode_init(e, ways, shots, queries, size)) {
            snprintf(err, errlen, "out of memory for %d episodes", r->meta_batch);
            return -1;
        }
    }
    return 0;
}

/* Episodes drawn now and filled by the workers (no augmentation, no OML
 * remembered batch, whose draws come between the episodes' copies): the
 * same draws in the same order, so the same tasks bit for bit, and a
 * meta-batch holds one episode's images per thread. 1 drawn, 0 sampled,
 * -1 out of memory. */
static int drawn_episodes(meta_run *r, char *err, size_t errlen) {
    if (ml_augment_active(&r->augment) || r->task_classes) return with_images(r, err, errlen);
    if (r->fill_x) return 1;
    const int slots = ml_pool_threads(r->meta.pool);
    if (!(r->fill_x = malloc((size_t)slots * (size_t)episode_floats(&r->episodes[0]) * sizeof(float)))) {
        snprintf(err, errlen, "out of memory for %d episodes", slots);
        return -1;
    }
    return 1;
}

int fewshot_sample_batch(meta_run *r, char *err, size_t errlen) {
    const float *weights = NULL;
    if (r->selector) {
        if (task_select_prepare(r->selector, (int)r->meta.steps_done, &r->meta, &r->images, &r->train_classes, err,
                                errlen))
            return ML__RUN_FAIL;
        weights = r->selector->weights;
    }
    int drawn = drawn_episodes(r, err, errlen);
    if (drawn < 0) return ML__RUN_FAIL;
    for (int i = 0; i < r->meta_batch; i++) {
        if (drawn ? ml_episode_draw_weighted(&r->episodes[i], &r->images, &r->train_classes, weights, &r->rng, err,
                                             errlen)
                  : ml_episode_sample_weighted(&r->episodes[i], &r->images, &r->train_classes, weights, &r->augment,
                                               &r->rng, err, errlen))
            return ML__RUN_FAIL;
        r->batch[i] = episode_view(&r->episodes[i]);
        if (r->task_classes && remembered_batch(r, i, err, errlen)) return ML__RUN_FAIL;
    }
    if (drawn) {
        r->meta.prepare_task = fill_episode;
        r->meta.prepare_user = r;
    }
    return 0;
}

int fewshot_sample_from(meta_run *r, const ml_class_list *classes, ml_rng *rng, char *err, size_t errlen) {
    if (with_images(r, err, errlen)) return ML__RUN_FAIL;
    for (int i = 0; i < r->meta_batch; i++) {
        if (ml_episode_sample(&r->episodes[i], &r->images, classes, &r->augment, rng, err, errlen)) return ML__RUN_FAIL;
        r->batch[i] = episode_view(&r->episodes[i]);
    }
    return 0;
}

int fewshot_sample_pretrain(meta_run *r, char *err, size_t errlen) {
    const ml_class_list *cl = &r->train_classes;
    const int64_t plane = (int64_t)r->images.size * r->images.size;
    for (int b = 0; b < r->batch_size; b++) {
        int k = (int)ml_rng_below(&r->rng, (uint32_t)cl->n);
        const ml_class_ref c = cl->items[k];
        int64_t first = r->images.class_start[c.cls], have = r->images.class_start[c.cls + 1] - first;
        int64_t idx = first + (int64_t)ml_rng_below(&r->rng, (uint32_t)have);
        if (ml_image_set_copy(&r->images, idx, c.rot, &r->augment, &r->rng, r->pre_x + b * plane) != ML_OK) {
            snprintf(err, errlen, "pretrain minibatch: image %lld of class %s could not be copied", (long long)idx,
                     r->images.class_names[c.cls]);
            return ML__RUN_FAIL;
        }
        r->pre_y[b] = k;
    }
    r->batch[0] = (ml_task_data){.n_support = r->batch_size, .ways = cl->n, .xs = r->pre_x, .ls = r->pre_y};
    return 0;
}

void fewshot_after_step(meta_run *r) {
    if (r->fewshot && r->selector) task_select_record(r->selector, r->episodes, r->meta.task_loss, r->meta_batch);
}

/* --target test-support:K: the first K images of each test class (rotation
 * 0), labelled by test class. Only used to rank training classes. */
static int target_test_support(meta_run *r, const char *spec, task_selector *t, char *err, size_t errlen) {
    char *end;
    long k = strtol(spec, &end, 10);
    const ml_class_list *test = &r->split.part[ML_SPLIT_TEST];
    if (end == spec || *end || k < 1 || k > 100000) {
        snprintf(err, errlen, "--target test-support:%s: expected test-support:K with K >= 1", spec);
        return ML__RUN_USAGE;
    }
    if (test->n < 1) {
        snprintf(err, errlen, "--target test-support:%ld: the test split is empty", k);
        return ML__RUN_FAIL;
    }
    const size_t plane = (size_t)r->images.size * r->images.size;
    float *x = malloc((size_t)test->n * k * plane * sizeof(float));
    int32_t *y = malloc((size_t)test->n * k * sizeof(int32_t));
    int m = 0, status = ML__RUN_FAIL;
    if (!x || !y) {
        snprintf(err, errlen, "out of memory for the target images");
        goto out;
    }
    for (int c = 0; c < test->n; c++) {
        int64_t first = r->images.class_start[test->items[c].cls], have = r->images.class_start[test->items[c].cls + 1] - first;
        if (have < k) {
            snprintf(err, errlen, "--target test-support:%ld: test class %s has only %lld images", k,
                     r->images.class_names[test->items[c].cls], (long long)have);
            goto out;
        }
        for (int j = 0; j < k; j++, m++) {
            ml_image_set_copy(&r->images, first + j, 0, NULL, NULL, x + (size_t)m * plane);
            y[m] = c;
        }
    }
    if (task_select_set_target(t, x, y, m, test->n, r->images.size)) snprintf(err, errlen, "out of memory");
    else status = 0;
out:
    free(x);
    free(y);
    return status;
}

/* --target DIR: one subfolder per class (a flat folder is one class); every
 * image the same size, at least S x S (they are area-averaged down). */
static int target_folder(meta_run *r, const char *dir, task_selector *t, char *err, size_t errlen) {
    ml_image_options opt = {.size = r->images.size, .keep_raw = 1};
    ml_image_set set;
    char why[1024];
    if (ml_image_folder_load(dir, &opt, &set, why, sizeof why)) {
        snprintf(err, errlen, "--target: %s", why);
        return ML__RUN_FAIL;
    }
    int status = 0;
    if (set.raw_h < r->images.size || set.raw_w < r->images.size) {
        snprintf(err, errlen, "--target %s: images are %dx%d, smaller than the model's %dx%d input", dir, set.raw_w,
                 set.raw_h, r->images.size, r->images.size);
        status = ML__RUN_FAIL;
    } else if (task_select_set_target(t, set.x, set.y, (int)set.n, set.n_classes, set.size)) {
        snprintf(err, errlen, "out of memory");
        status = ML__RUN_FAIL;
    }
    ml_image_set_free(&set);
    return status;
}

int fewshot_select_setup(meta_run *r, const ml_run_config *o, char *err, size_t errlen) {
    task_sampler_kind kind;
    if (task_sampler_parse(o->task_sampler, &kind)) {
        snprintf(err, errlen, "--task-sampler '%s': expected uniform, similar or curriculum", o->task_sampler);
        return ML__RUN_USAGE;
    }
    if (kind == TASK_SAMPLER_UNIFORM) return 0;
    if (!r->fewshot) {
        snprintf(err, errlen, "--task-sampler %s: only for few-shot image datasets (--dataset omniglot:...)", o->task_sampler);
        return ML__RUN_USAGE;
    }
    if (ml_algo_info(r->algo)->batch_training) { /* its minibatches are not episodes */
        snprintf(err, errlen, "--task-sampler %s: --algo %s draws plain minibatches, not episodes", o->task_sampler,
                 ml_algo_name(r->algo));
        return ML__RUN_USAGE;
    }
    if (kind == TASK_SAMPLER_SIMILAR && !o->target) {
        snprintf(err, errlen, "--task-sampler similar needs --target DIR or --target test-support:K");
        return ML__RUN_USAGE;
    }
    task_selector *t = malloc(sizeof *t);
    if (!t || task_select_init(t, kind, r->train_classes.n)) {
        free(t);
        snprintf(err, errlen, "out of memory for the task sampler");
        return ML__RUN_FAIL;
    }
    r->selector = t; /* freed by fewshot_free from here on */
    t->k = o->select_k;
    t->prob = o->select_prob;
    t->every = o->select_every;
    t->strength = o->curriculum_strength;
    t->total_iters = o->iters;
    if (kind != TASK_SAMPLER_SIMILAR) return 0;
    if (!strncmp(o->target, "test-support:", 13)) return target_test_support(r, o->target + 13, t, err, errlen);
    return target_folder(r, o->target, t, err, errlen);
}

/* ---- evaluation ------------------------------------------------------------------------- */

/* Lake's runs: each is a 20-way one-shot task (20 training images, one per
 * class, and 20 test images). Returns the mean error or NAN on failure. */
static double lake_eval(meta_run *r, const ml_run_config *o, int steps, double *errors, int *n_runs, char *err,
                        size_t errlen) {
    char why[1024];
    ml_lake_runs lr;
    ml_image_options opt = {.size = r->images.size};
    if (ml_lake_runs_load(o->lake_runs, &opt, &lr, why, sizeof why)) {
        snprintf(err, errlen, "--lake-runs: %s", why);
        return NAN;
    }
    double mean = NAN;
    int per = r->images.size * r->images.size;
    int32_t labels[64];
    ml_task_data *tasks = calloc((size_t)lr.n_runs, sizeof *tasks);
    double *loss = malloc((size_t)lr.n_runs * (steps + 1) * sizeof(double));
    double *acc = malloc((size_t)lr.n_runs * (steps + 1) * sizeof(double));
    if (!any_ways(r->algo) && r->ways != lr.n_train) {
        snprintf(err, errlen, "--lake-runs: the runs are %d-way; a %s model with a %d-way head cannot label them "
                        "(train with --ways %d)\n", lr.n_train, ml_algo_name(r->algo), r->ways, lr.n_train);
        goto out;
    }
    if (!tasks || !loss || !acc || lr.n_train > 64) goto out;
    for (int k = 0; k < lr.n_train; k++) labels[k] = k;
    for (int i = 0; i < lr.n_runs; i++)
        tasks[i] = (ml_task_data){.n_support = lr.n_train,
                                  .n_query = lr.n_test,
                                  .ways = lr.n_train,
                                  .xs = lr.train_x + (int64_t)i * lr.n_train * per,
                                  .xq = lr.test_x + (int64_t)i * lr.n_test * per,
                                  .ls = labels,
                                  .lq = lr.test_label + (int64_t)i * lr.n_test};
    /* Only the error after `steps` steps is reported: no query pass before. */
    unsigned char *report = calloc((size_t)steps + 1, 1);
    if (!report) goto out;
    ml_status est = ml_meta_evaluate_at(&r->meta, tasks, lr.n_runs, steps, report, loss, acc, why, sizeof why);
    free(report);
    if (est) {
        snprintf(err, errlen, "Lake's runs: %s", why);
        goto out;
    }
    mean = 0;
    for (int i = 0; i < lr.n_runs; i++) {
        errors[i] = 1.0 - acc[i * (steps + 1) + steps];
        mean += errors[i] / lr.n_runs;
    }
    *n_runs = lr.n_runs;
out:
    free(tasks);
    free(loss);
    free(acc);
    ml_lake_runs_free(&lr);
    return mean;
}

int fewshot_final_eval(meta_run *r, const ml_run_config *o, int iterations, double train_s, int iters_run, char *err,
                       size_t errlen) {
    snprintf(err, errlen, "out of memory"); /* what a bare failure below means */
    int shots[MAX_LIST], steps[MAX_LIST];
    int n_shots = o->eval_shots ? ml__parse_int_list(o->eval_shots, shots, MAX_LIST, 1) : 1;
    if (!o->eval_shots) shots[0] = o->shots;
    int n_steps = ml__parse_int_list(o->eval_steps, steps, MAX_LIST, 0), max_steps = 0;
    int metric = !ml_algo_has_inner_steps(r->algo);
    for (int i = 0; i < n_steps; i++) max_steps = steps[i] > max_steps ? steps[i] : max_steps;
    if (metric) { /* no adaptation steps to report */
        n_steps = 1;
        steps[0] = max_steps = 0;
    }
    /* Lake's runs are labelled after one step count: --lake-steps, else the largest reported. */
    const int lake_steps = metric ? 0 : o->lake_steps > 0 ? o->lake_steps : max_steps;
    int ways = o->eval_ways > 0 ? o->eval_ways : r->ways;
    if (!any_ways(r->algo) && ways != r->ways) {
        snprintf(err, errlen, "%s %d: a %s model has a %d-way head", meta_eval_option(o, "--eval-ways", "--ways"), ways,
                 ml_algo_name(r->algo), r->ways);
        return ML__RUN_USAGE;
    }
    /* `eval --split val` scores on the validation classes (strategy search);
     * everything else on the test classes. */
    const char *part_name = o->eval_val ? "validation" : "test";
    const ml_class_list *test = &r->split.part[o->eval_val ? ML_SPLIT_VAL : ML_SPLIT_TEST];
    if (o->eval_tasks > 0 && test->n == 0) {
        snprintf(err, errlen, "evaluation: the %s split of %s/split.json has no classes (see --split)", part_name,
                r->dir);
        return ML__RUN_FAIL;
    }
    int min_images = INT32_MAX;
    for (int i = 0; i < test->n; i++) {
        int64_t c = test->items[i].cls, k = r->images.class_start[c + 1] - r->images.class_start[c];
        if (k < min_images) min_images = (int)k;
    }
    int E = o->eval_tasks, B = r->meta_batch, stride = max_steps + 1, status = ML__RUN_FAIL;
    char why[1024];
    double *acc = malloc((size_t)(E > 0 ? E : 1) * stride * sizeof(double));
    double *loss = malloc((size_t)B * stride * sizeof(double)), *col = malloc((size_t)(E > 0 ? E : 1) * sizeof(double));
    double *mean = calloc((size_t)n_shots * stride, sizeof(double)), *half = calloc((size_t)n_shots * stride, sizeof(double));
    int *queries = calloc((size_t)n_shots, sizeof(int));
    /* Only the step counts printed are scored (a query pass per step would
     * make a 1,10-step evaluation ~4x slower). */
    unsigned char *report = calloc((size_t)stride, 1);
    if (report)
        for (int k = 0; k < n_steps; k++) report[steps[k]] = 1;
    ml_episode *eps = calloc((size_t)B, sizeof *eps);
    ml_task_data *views = calloc((size_t)B, sizeof *views);
    double lake_err[64], lake_mean = NAN;
    int lake_n = 0;
    if (!acc || !loss || !col || !mean || !half || !queries || !report || !eps || !views) goto done;
    ml_meta_progress_begin(&r->meta, (int64_t)E * n_shots);
    double t0 = ml_now();
    for (int si = 0; si < n_shots && E > 0; si++) {
        /* Queries per class: --eval-query, at most what the test classes hold
         * beside the shots (the default 100 means "as many as there are"). */
        int q = o->eval_query > 0 && o->eval_query < min_images - shots[si] ? o->eval_query : min_images - shots[si];
        queries[si] = q;
        if (q < 1 || ways > test->n) {
            snprintf(err, errlen, "evaluation: %d-way %d-shot needs %d %s classes with more than %d images "
                            "(the %s split has %d classes of at least %d images)",
                    ways, shots[si], ways, part_name, shots[si], part_name, test->n, min_images);
            goto done;
        }
        for (int b = 0; b < B; b++) {
            ml_episode_free(&eps[b]);
            if (ml_episode_init(&eps[b], ways, shots[si], q, r->images.size)) goto done;
        }
        /* The same seed for every run: all models meet the same episodes. */
        ml_rng rng;
        ml_rng_seed(&rng, o->eval_seed);
        double *acc_chunk = malloc((size_t)B * stride * sizeof(double));
        if (!acc_chunk) goto done;
        for (int start = 0; start < E; start += B) {
            int n = E - start < B ? E - start : B;
            for (int b = 0; b < n; b++) {
                if (ml_episode_draw_weighted(&eps[b], &r->images, test, NULL, &rng, why, sizeof why) ||
                    fill_on_threads(&eps[b], &r->images, r->threads, why, sizeof why)) {
                    snprintf(err, errlen, "evaluation episodes: %s", why);
                    free(acc_chunk);
                    goto done;
                }
                views[b] = episode_view(&eps[b]);
            }
            if (ml_meta_evaluate_at(&r->meta, views, n, max_steps, report, loss, acc_chunk, why, sizeof why)) {
                snprintf(err, errlen, "evaluation: %s", why);
                free(acc_chunk);
                goto done;
            }
            memcpy(acc + (int64_t)start * stride, acc_chunk, (size_t)n * stride * sizeof(double));
        }
        free(acc_chunk);
        for (int s = 0; s <= max_steps; s++) {
            if (!report[s]) {
                mean[si * stride + s] = half[si * stride + s] = NAN;
                continue;
            }
            for (int t = 0; t < E; t++) col[t] = acc[(int64_t)t * stride + s];
            if (ml_mean_ci95(col, E, &mean[si * stride + s], &half[si * stride + s]) != ML_OK)
                mean[si * stride + s] = half[si * stride + s] = NAN;
        }
    }
    if (o->lake_runs) {
        lake_mean = lake_eval(r, o, lake_steps, lake_err, &lake_n, err, errlen);
        if (isnan(lake_mean)) goto done;
    }
    double eval_s = ml_now() - t0;
    if (E > 0) {
        fprintf(r->out, "evaluation: %s on %s, %d episodes of %s (%d%s classes), accuracy with 95%% CI\n", ml_algo_name(r->algo),
               r->data_name ? r->data_name : o->dataset, E, r->all_classes ? "all its classes" : "held-out classes",
               test->n, o->eval_val ? " validation" : "");
        fprintf(r->out, "%6s %6s %8s %6s %10s %8s\n", "ways", "shots", "queries", "steps", "accuracy", "+-95%");
        for (int si = 0; si < n_shots; si++)
            for (int k = 0; k < n_steps; k++) {
                int at = si * stride + steps[k];
                fprintf(r->out, "%6d %6d %8d %6d %10.4f %8.4f\n", ways, shots[si], queries[si], steps[k], mean[at], half[at]);
            }
    }
    if (lake_n) {
        fprintf(r->out, "Lake's one-shot runs (20-way, within alphabet), error after %d step(s):\n", lake_steps);
        for (int i = 0; i < lake_n; i++) fprintf(r->out, "  run %02d  %5.1f%%\n", i + 1, 100 * lake_err[i]);
        fprintf(r->out, "  mean    %5.1f%%\n", 100 * lake_mean);
    }
    /* eval.json (train) and the JSON line share one rendering. */
    size_t cap = 8192 + (size_t)n_shots * n_steps * 160, off = 0;
    char *buf = malloc(cap), num[2][48];
    if (!buf) goto done;
    off += (size_t)snprintf(buf + off, cap - off,
                            "{\"command\":\"%s\",\"algo\":\"%s\",\"dataset\":\"%s\",\"eval_classes\":\"%s\","
                            "\"model\":\"%s\",\"run\":\"%s\","
                            "\"iterations\":%d,\"train_ways\":%d,\"train_shots\":%d,\"episodes\":%d,\"eval_seed\":%" PRIu64
                            ",\"train_seconds\":%.3f,\"iters_per_second\":%.3f,\"eval_seconds\":%.3f,\"threads\":%d,"
                            "\"split\":\"%s\",\"results\":[",
                            r->write_eval_file ? "train" : "eval", ml_algo_name(r->algo),
                            r->data_name ? r->data_name : o->dataset, r->all_classes ? "all" : "test", r->model_spec, r->dir,
                            iterations, r->ways, o->shots, E, o->eval_seed, train_s,
                            iters_run > 0 ? iters_run / (train_s + 1e-9) : 0.0, eval_s, r->threads, o->eval_val ? "val" : "test");
    int first = 1;
    for (int si = 0; si < n_shots && E > 0; si++)
        for (int k = 0; k < n_steps; k++) {
            int at = si * stride + steps[k];
            ml__json_number(num[0], sizeof num[0], "", mean[at]);
            ml__json_number(num[1], sizeof num[1], "", half[at]);
            off += (size_t)snprintf(buf + off, cap - off,
                                    "%s{\"ways\":%d,\"shots\":%d,\"queries\":%d,\"steps\":%d,\"accuracy\":%s,\"ci95\":%s}",
                                    first ? "" : ",", ways, shots[si], queries[si], steps[k], num[0], num[1]);
            first = 0;
            ml_run_eval_row row = {.ways = ways, .queries = queries[si], .shots = shots[si], .steps = steps[k],
                                   .mean = mean[at], .ci95 = half[at]};
            if (r->result && ml__eval_result_add(r->result, &row)) {
                free(buf);
                goto done;
            }
        }
    off += (size_t)snprintf(buf + off, cap - off, "]");
    if (lake_n && r->result) {
        r->result->lake_errors = malloc((size_t)lake_n * sizeof(double));
        if (!r->result->lake_errors) {
            free(buf);
            goto done;
        }
        memcpy(r->result->lake_errors, lake_err, (size_t)lake_n * sizeof(double));
        r->result->lake_runs = lake_n;
        r->result->lake_steps = lake_steps;
        r->result->lake_mean_error = lake_mean;
    }
    if (lake_n) {
        off += (size_t)snprintf(buf + off, cap - off, ",\"lake_runs\":{\"steps\":%d,\"errors\":[", lake_steps);
        for (int i = 0; i < lake_n; i++) off += (size_t)snprintf(buf + off, cap - off, "%s%.4f", i ? "," : "", lake_err[i]);
        off += (size_t)snprintf(buf + off, cap - off, "],\"mean_error\":%.4f}", lake_mean);
    }
    off += (size_t)snprintf(buf + off, cap - off, "}\n");
    if (r->write_eval_file) {
        char path[4200];
        snprintf(path, sizeof path, "%s/eval.json", r->dir);
        if (ml_file_write_atomic(path, buf, off, why, sizeof why) != ML_OK) {
            snprintf(err, errlen, "%s", why);
            free(buf);
            goto done;
        }
    }
    if (o->json) fputs(buf, r->out);
    free(buf);
    status = 0;
done:
    if (eps)
        for (int b = 0; b < B; b++) ml_episode_free(&eps[b]);
    free(eps);
    free(views);
    free(acc);
    free(loss);
    free(col);
    free(mean);
    free(half);
    free(queries);
    free(report);
    return status;
}
