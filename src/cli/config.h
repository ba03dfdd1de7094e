/* config.h: JSON config files for a subcommand's option table (see args.h).
 *
 * A config file is one JSON object whose keys are option names without the
 * "--" ({"epochs": 5, "lr": 0.01, "optimizer": "sgd", "json": true}); each
 * value sets its option exactly as the command line would, with the same
 * bounds. Precedence: the file first, then the command line overrides, so a
 * caller does
 *     config_apply_file(&cmd, path, err, sizeof err);   then
 *     args_parse(&cmd, argc, argv, ...);
 * (a flag turned on in the file cannot be turned off from the command line,
 * since flags there take no value). Value types: ARG_INT an integral number,
 * ARG_FLOAT a number, ARG_U64 an integral number or a string of digits (JSON
 * numbers are exact only up to 2^53), ARG_FLAG true/false, ARG_STRING a
 * non-empty string. null, for any option, means "not set here": the option
 * keeps its value (its default, or what an earlier settings file set), so no
 * option is ever left NULL or half-set by a file. */
#ifndef ML_CLI_CONFIG_H
#define ML_CLI_CONFIG_H

#include <stddef.h>

#include "cli/args.h"

/* Return codes; they double as the CLI exit status. */
enum { CONFIG_OK = 0, CONFIG_FILE_ERROR = 1, CONFIG_BAD_VALUE = 2 };

/* Reads a JSON object from path and sets the targets of cmd's specs. All or
 * nothing: every key is checked before any target is written. Returns
 * CONFIG_FILE_ERROR for a missing/unreadable file, invalid JSON or a
 * non-object, CONFIG_BAD_VALUE for an unknown or repeated key or a bad value;
 * err gets one line naming the file and the key, e.g.
 *   "run.json: unknown key 'lr_inner' (see metalearn train --help)".
 * String values are copied into a pool that lives until process exit (or
 * config_free_strings), so targets stay valid after the call. */
int config_apply_file(const arg_cmd *cmd, const char *path, char *err, size_t errlen);

/* The same for a parsed JSON object; label names it in messages (a file). */
struct cJSON;
int config_apply_json(const arg_cmd *cmd, const struct cJSON *root, const char *label, char *err, size_t errlen);

/* Writes the current value of every spec, in table order, as a JSON object
 * that config_apply_file reads back to the same values (floats are printed
 * with the fewest digits that round-trip). Written atomically. Returns
 * CONFIG_OK or CONFIG_FILE_ERROR. */
int config_write_json(const arg_cmd *cmd, const char *path, char *err, size_t errlen);

/* Frees the string pool. Only for leak checkers and tests: any target that
 * config_apply_file set to a string dangles afterwards. */
void config_free_strings(void);

#endif
