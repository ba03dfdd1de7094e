/* args.h: the command-line parser over an option table (metalearn/options.h).
 *
 * Each subcommand declares a table of options; parse fills the targets,
 * prints a usage message and returns 2 on an unknown flag or a bad value, or
 * prints help and returns 1 (caller exits 0) for --help. */
#ifndef ML_CLI_ARGS_H
#define ML_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/options.h"

enum { ARGS_OK = 0, ARGS_HELP = 1, ARGS_USAGE = 2 };

/* Parses argv[first..argc). Positional arguments go to positional[]
 * (at most max_positional). */
int args_parse(const ml_option_set *cmd, int argc, char **argv, int first, const char **positional,
               int max_positional, int *n_positional);
void args_print_help(const ml_option_set *cmd);
/* The value of "--NAME VALUE" or "--NAME=VALUE" in argv[first..argc), NULL if
 * absent: for options that must be seen before parsing (--config, --resume). */
const char *args_find_value(int argc, char **argv, int first, const char *name);

#endif
