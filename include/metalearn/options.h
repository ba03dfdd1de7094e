/* metalearn/options.h: named, typed, bounded settings, and JSON files of them.
 *
 * An option table describes the settings of something (a run, a search, a
 * command) once: name, type, where the value lives, a help line, bounds.
 * The same table serves command-line flags (the CLI's parser), JSON config
 * files, the effective config a run writes (config.json), and set-by-name
 * from other languages (the Python package), so names, bounds and
 * messages agree everywhere.
 *
 * A config file is one JSON object whose keys are option names without the
 * "--" ({"epochs": 5, "lr": 0.01, "optimizer": "sgd", "json": true}). Value
 * types: ML_OPT_INT an integral number, ML_OPT_FLOAT a number, ML_OPT_U64 an
 * integral number or a string of digits (JSON numbers are exact only up to
 * 2^53), ML_OPT_FLAG true/false, ML_OPT_STRING a non-empty string. null, for
 * any option, means "not set here": the option keeps its value (its default,
 * or what an earlier settings file set), so no option is ever left NULL or
 * half-set by a file. */
#ifndef METALEARN_OPTIONS_H
#define METALEARN_OPTIONS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ML_OPT_INT, ML_OPT_FLOAT, ML_OPT_STRING, ML_OPT_FLAG, ML_OPT_U64 } ml_option_type;

typedef struct ml_option {
    const char *name; /* without the leading "--" */
    ml_option_type type;
    void *target;     /* int*, float*, const char**, int* (flag), uint64_t* */
    const char *help;
    double min, max;  /* numeric bounds (inclusive); ignored when min > max */
} ml_option;

typedef struct ml_option_set {
    const char *name;     /* "train": names the table in messages ("see metalearn train --help") */
    const char *synopsis; /* one line of usage */
    const char *about;    /* a paragraph */
    const ml_option *options;
    int n_options;
} ml_option_set;

/* Return codes; they double as the CLI exit status. */
enum { ML_OPTIONS_OK = 0, ML_OPTIONS_FILE_ERROR = 1, ML_OPTIONS_BAD_VALUE = 2 };

/* The option called name (exact), or NULL. */
const ml_option *ml_options_find(const ml_option_set *set, const char *name);

/* Sets one option from text as a command line gives it ("0.01", "maml";
 * flags take "1"/"true" or "0"/"false"), with its bounds. Strings are copied
 * into the pool below. Returns ML_OPTIONS_OK, or ML_OPTIONS_BAD_VALUE with err
 * e.g. "--inner-lr: 'x' is not a number". */
int ml_options_set_text(const ml_option *o, const char *text, char *err, size_t errlen);
/* The same by name; an unknown name gets "unknown option 'NAME' (did you mean
 * 'inner-lr'?)". */
int ml_options_set(const ml_option_set *set, const char *name, const char *text, char *err, size_t errlen);

/* Reads a JSON object from path and sets the targets of the set's options.
 * All or nothing: every key is checked before any target is written. Returns
 * ML_OPTIONS_FILE_ERROR for a missing/unreadable file, invalid JSON or a
 * non-object, ML_OPTIONS_BAD_VALUE for an unknown or repeated key or a bad
 * value; err gets one line naming the file and the key, e.g.
 *   "run.json: unknown key 'lr_inner' (see metalearn train --help)".
 * String values are copied into a pool that lives until process exit (or
 * ml_options_free_strings), so targets stay valid after the call. */
int ml_options_apply_file(const ml_option_set *set, const char *path, char *err, size_t errlen);
/* The same for JSON text (label names it in messages). */
int ml_options_apply_json_text(const ml_option_set *set, const char *text, const char *label, char *err,
                               size_t errlen);
/* The same for a parsed cJSON object. */
struct cJSON;
int ml_options_apply_json(const ml_option_set *set, const struct cJSON *root, const char *label, char *err,
                          size_t errlen);

/* Writes the current value of every option, in table order, as a JSON object
 * that ml_options_apply_file reads back to the same values (floats are
 * printed with the fewest digits that round-trip). Written atomically.
 * Returns ML_OPTIONS_OK or ML_OPTIONS_FILE_ERROR. */
int ml_options_write_json(const ml_option_set *set, const char *path, char *err, size_t errlen);
/* The same object as text (malloc'd, free with ml_free), or NULL. */
char *ml_options_to_json(const ml_option_set *set);

/* Frees the string pool. Only for leak checkers and tests: any target that
 * a file or ml_options_set set to a string dangles afterwards. */
void ml_options_free_strings(void);

/* The option of set nearest to name (edit distance with transpositions, at
 * most 2 and under half the name's length; '_' counts as '-'), or NULL: for
 * "did you mean --inner-lr?" after a mistyped option or config key. */
const char *ml_options_suggest(const ml_option_set *set, const char *name, size_t len);
/* The same over a plain list of n names (subcommands). */
const char *ml_suggest_name(const char *const *names, int n, const char *name, size_t len);

#ifdef __cplusplus
}
#endif
#endif
