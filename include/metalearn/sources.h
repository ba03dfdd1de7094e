/* metalearn/sources.h: the dataset sources, one table (src/data/sources.c):
 * what `--dataset` and `--task` accept, each with its spec syntax, its kind
 * (an image set for episodes, or a task family for regression), a line for
 * help texts and its loader. Help texts, errors and the loaders all read the
 * table, so a new source is one row and its loader.
 *
 * A spec is NAME or NAME:ARG (e.g. "fashion-mnist", "idx:DIR",
 * "omniglot:A.zip,B.zip", "linear:3"); NAME is the text before the first ':'. */
#ifndef METALEARN_SOURCES_H
#define METALEARN_SOURCES_H

#include "metalearn/images.h"
#include "metalearn/tasks.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ML_SOURCE_IMAGES, /* labelled images: few-shot episodes (--dataset) */
    ML_SOURCE_TASKS   /* a family of regression tasks (--task) */
} ml_source_kind;

typedef enum { ML_SOURCE_ARG_NONE, ML_SOURCE_ARG_REQUIRED, ML_SOURCE_ARG_OPTIONAL } ml_source_arg;

typedef struct ml_source_info {
    const char *name;        /* "omniglot", "fashion-mnist", ... */
    const char *usage;       /* the spec's syntax for help texts: "omniglot:PATH[,PATH...]" */
    ml_source_kind kind;
    ml_source_arg arg;       /* whether NAME:ARG takes an ARG */
    const char *description; /* one line for help texts */
    const char *idx_dir;     /* IDX sources: the folder of the IDX files (NULL: the ARG) */
    int supervised;          /* also a supervised classifier's dataset (IDX sets) */
    int has_alphabets;       /* classes grouped in alphabets (--split-by alphabet, Lake's runs) */
    /* images: loads the set (test_images: an IDX set's t10k files) at opt's size */
    ml_status (*load_images)(const struct ml_source_info *src, const char *arg, int test_images,
                             const ml_image_options *opt, ml_image_set *out, char *err, size_t errlen);
    /* tasks: sets up the family (*f zeroed; freed by the caller on failure) */
    ml_status (*init_tasks)(ml_task_family *f, const char *spec, const char *arg, char *err, size_t errlen);
} ml_source_info;

/* The row whose NAME the spec has (NULL: none); *arg (may be NULL) gets the
 * text after "NAME:" or NULL when there is no ':'. */
const ml_source_info *ml_source_find(const char *spec, const char **arg);
/* ml_source_find, checking the kind and the ARG: ML_ERR_ARG with a message
 * listing the sources of that kind ("expected omniglot:PATH[,PATH...], ...")
 * when the spec is not one of them. what names the option in the message. */
ml_status ml_source_parse(const char *spec, ml_source_kind kind, const char *what, const ml_source_info **src,
                          const char **arg, char *err, size_t errlen);
/* The usages of the sources of a kind (supervised_only: IDX sets only),
 * joined by ", " and last_sep before the last (NULL: ", "). Returns buf. */
const char *ml_source_list(char *buf, size_t len, ml_source_kind kind, int supervised_only, const char *last_sep);
/* Loads the image set a spec names at opt's size (ML_ERR_ARG: a spec the
 * table does not accept). */
ml_status ml_source_load_images(const char *spec, int test_images, const ml_image_options *opt, ml_image_set *out,
                                char *err, size_t errlen);
/* Where Debian's dataset-fashion-mnist puts its IDX files. */
#define ML_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

#ifdef __cplusplus
}
#endif
#endif
