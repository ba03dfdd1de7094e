/* sources.c: the dataset-source table (metalearn/sources.h), its parser and
 * the image loaders of its rows; the task families' loaders are in tasks.c
 * (ml__tasks_init_*). Adding a source: a row here and its loader. */
#include <stdio.h>
#include <string.h>

#include "core/errfmt.h"
#include "data/tasks_internal.h"
#include "metalearn/data.h"
#include "metalearn/sources.h"

#define MAX_PATHS 8

static ml_status load_omniglot(const ml_source_info *src, const char *arg, int test_images,
                               const ml_image_options *opt, ml_image_set *out, char *err, size_t errlen) {
    (void)test_images;
    char list[4096], *paths[MAX_PATHS], *save = NULL;
    int n_paths = 0;
    snprintf(list, sizeof list, "%s", arg);
    for (char *p = strtok_r(list, ",", &save); p && n_paths < MAX_PATHS; p = strtok_r(NULL, ",", &save))
        paths[n_paths++] = p;
    if (!n_paths) {
        ml__errf(err, errlen, "--dataset %s:%s: expected %s", src->name, arg, src->usage);
        return ML_ERR_ARG;
    }
    return ml_omniglot_load((const char *const *)paths, n_paths, opt, out, err, errlen);
}

static ml_status load_idx(const ml_source_info *src, const char *arg, int test_images, const ml_image_options *opt,
                          ml_image_set *out, char *err, size_t errlen) {
    const char *dir = src->idx_dir ? src->idx_dir : arg;
    ml_dataset d;
    ml_status st = ml_dataset_load_idx(dir, test_images ? "test" : "train", &d, err, errlen);
    if (st) return st;
    /* The reader assumes MNIST's ten classes; a few-shot set has as many
     * classes as its largest label + 1. */
    d.n_classes = 0;
    for (int64_t i = 0; i < d.n; i++)
        if (d.y[i] + 1 > d.n_classes) d.n_classes = d.y[i] + 1;
    char name[4200];
    snprintf(name, sizeof name, "%s/%s", dir, test_images ? "t10k" : "train");
    st = ml_image_set_from_dataset(&d, name, opt, out, err, errlen);
    ml_dataset_free(&d);
    return st;
}

static ml_status load_folder(const ml_source_info *src, const char *arg, int test_images,
                             const ml_image_options *opt, ml_image_set *out, char *err, size_t errlen) {
    (void)test_images;
    ml_status st = ml_image_folder_load(arg, opt, out, err, errlen);
    if (st) return st;
    if (!out->labelled) {
        ml_image_set_free(out);
        ml__errf(err, errlen, "--dataset %s:%s: the folder holds no class subfolders (expected DIR/CLASS/NAME.png)",
                 src->name, arg);
        return ML_ERR_FORMAT;
    }
    return ML_OK;
}

static const ml_source_info table[] = {
    {"omniglot", "omniglot:PATH[,PATH...]", ML_SOURCE_IMAGES, ML_SOURCE_ARG_REQUIRED,
     "Omniglot's zips or folders (alphabet/character/NAME.png)", NULL, 0, 1, load_omniglot, NULL},
    {"fashion-mnist", "fashion-mnist", ML_SOURCE_IMAGES, ML_SOURCE_ARG_NONE,
     "Fashion-MNIST from Debian's dataset-fashion-mnist, one class per label", ML_FASHION_MNIST_DIR, 1, 0, load_idx,
     NULL},
    {"idx", "idx:DIR", ML_SOURCE_IMAGES, ML_SOURCE_ARG_REQUIRED,
     "IDX files (train-/t10k-images-idx3-ubyte[.gz] and labels), one class per label", NULL, 1, 0, load_idx, NULL},
    {"folder", "folder:DIR", ML_SOURCE_IMAGES, ML_SOURCE_ARG_REQUIRED, "PNGs in one subfolder per class", NULL, 0,
     0, load_folder, NULL},
    {"sinusoid", "sinusoid", ML_SOURCE_TASKS, ML_SOURCE_ARG_NONE,
     "y = A sin(x - phase), A ~ U[0.1, 5], phase ~ U[0, pi], x ~ U[-5, 5]", NULL, 0, 0, NULL, ml__tasks_init_sinusoid},
    {"linear", "linear[:D]", ML_SOURCE_TASKS, ML_SOURCE_ARG_OPTIONAL, "y = w.x + b, w, b ~ U[-3, 3], D inputs", NULL,
     0, 0, NULL, ml__tasks_init_linear},
    {"sine-seq", "sine-seq[:F]", ML_SOURCE_TASKS, ML_SOURCE_ARG_OPTIONAL,
     "F sinusoids (default 10) one after another, input (x, one-hot function): OML's incremental sine waves", NULL,
     0, 0, NULL, ml__tasks_init_sine_seq},
    {"csv", "csv:FILE", ML_SOURCE_TASKS, ML_SOURCE_ARG_REQUIRED, "fixed tasks from a CSV file (task,split,x...,y)",
     NULL, 0, 0, NULL, ml__tasks_init_csv},
};
#define N_SOURCES ((int)(sizeof table / sizeof table[0]))

const ml_source_info *ml_source_find(const char *spec, const char **arg) {
    if (arg) *arg = NULL;
    if (!spec) return NULL;
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    for (int i = 0; i < N_SOURCES; i++)
        if (strlen(table[i].name) == len && !strncmp(spec, table[i].name, len)) {
            if (arg) *arg = colon ? colon + 1 : NULL;
            return &table[i];
        }
    return NULL;
}

const char *ml_source_list(char *buf, size_t len, ml_source_kind kind, int supervised_only, const char *last_sep) {
    if (!len) return buf;
    buf[0] = 0;
    int total = 0, n = 0;
    for (int i = 0; i < N_SOURCES; i++) total += table[i].kind == kind && (!supervised_only || table[i].supervised);
    for (int i = 0; i < N_SOURCES; i++) {
        if (table[i].kind != kind || (supervised_only && !table[i].supervised)) continue;
        const char *sep = !n++ ? "" : n == total && last_sep ? last_sep : ", ";
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", sep, table[i].usage);
    }
    return buf;
}

ml_status ml_source_parse(const char *spec, ml_source_kind kind, const char *what, const ml_source_info **src,
                          const char **arg, char *err, size_t errlen) {
    const char *a = NULL;
    const ml_source_info *s = ml_source_find(spec, &a);
    int arg_ok = s && (s->arg == ML_SOURCE_ARG_OPTIONAL || (s->arg == ML_SOURCE_ARG_NONE ? !a : a && *a));
    if (!s || s->kind != kind || !arg_ok) {
        char list[256];
        ml__errf(err, errlen, "%s '%s': expected %s", what, spec ? spec : "", ml_source_list(list, sizeof list, kind, 0, " or "));
        return ML_ERR_ARG;
    }
    if (src) *src = s;
    if (arg) *arg = a;
    return ML_OK;
}

ml_status ml_source_load_images(const char *spec, int test_images, const ml_image_options *opt, ml_image_set *out,
                                char *err, size_t errlen) {
    const ml_source_info *s;
    const char *arg;
    ml_status st = ml_source_parse(spec, ML_SOURCE_IMAGES, "--dataset", &s, &arg, err, errlen);
    return st ? st : s->load_images(s, arg, test_images, opt, out, err, errlen);
}
