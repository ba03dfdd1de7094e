/* args.h: a small table-driven option parser for the subcommands.
 *
 * Each subcommand declares a table of options; parse fills the targets,
 * prints a usage message and returns 2 on an unknown flag or a bad value, or
 * prints help and returns 1 (caller exits 0) for --help. */
#ifndef ML_CLI_ARGS_H
#define ML_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ARG_INT, ARG_FLOAT, ARG_STRING, ARG_FLAG, ARG_U64 } arg_type;

typedef struct arg_spec {
    const char *name; /* without the leading "--" */
    arg_type type;
    void *target;     /* int*, float*, const char**, int* (flag), uint64_t* */
    const char *help;
    double min, max;  /* numeric bounds (inclusive); ignored when min > max */
} arg_spec;

typedef struct arg_cmd {
    const char *name;     /* "train" */
    const char *synopsis; /* one line after "usage: metalearn train " */
    const char *about;    /* a paragraph */
    const arg_spec *specs;
    int n_specs;
} arg_cmd;

enum { ARGS_OK = 0, ARGS_HELP = 1, ARGS_USAGE = 2 };

/* Parses argv[first..argc). Positional arguments go to positional[]
 * (at most max_positional). */
int args_parse(const arg_cmd *cmd, int argc, char **argv, int first, const char **positional,
               int max_positional, int *n_positional);
void args_print_help(const arg_cmd *cmd);
/* The value of "--NAME VALUE" or "--NAME=VALUE" in argv[first..argc), NULL if
 * absent: for options that must be seen before parsing (--config, --resume). */
const char *args_find_value(int argc, char **argv, int first, const char *name);
/* The option of cmd nearest to name (edit distance with transpositions, at
 * most 2 and under half the name's length; '_' counts as '-'), or NULL: for
 * "did you mean --inner-lr?" after a mistyped option or config key. */
const char *args_suggest(const arg_cmd *cmd, const char *name, size_t len);
/* The same over a plain list of n names (subcommands). */
const char *args_suggest_name(const char *const *names, int n, const char *name, size_t len);

#endif
