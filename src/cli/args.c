/* args.c: the option parser (see args.h). Usage errors go to stderr, help to stdout. */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_hint(arg_type t) {
    switch (t) {
    case ARG_INT:
    case ARG_U64: return "N";
    case ARG_FLOAT: return "X";
    case ARG_STRING: return "S";
    case ARG_FLAG: return "";
    }
    return "";
}

void args_print_help(const arg_cmd *cmd) {
    printf("usage: metalearn %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->synopsis, cmd->about);
    for (int i = 0; i < cmd->n_specs; i++) {
        const arg_spec *s = &cmd->specs[i];
        char left[64];
        snprintf(left, sizeof left, "--%s %s", s->name, type_hint(s->type));
        printf("  %-24s %s\n", left, s->help);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

static int usage_error(const arg_cmd *cmd, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "metalearn %s: ", cmd->name);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nusage: metalearn %s %s\n(see metalearn %s --help)\n", cmd->name, cmd->synopsis, cmd->name);
    return ARGS_USAGE;
}

static int set_value(const arg_cmd *cmd, const arg_spec *s, const char *v) {
    char *end;
    errno = 0;
    switch (s->type) {
    case ARG_INT:
    case ARG_U64:
    case ARG_FLOAT: {
        double x = s->type == ARG_FLOAT ? strtod(v, &end) : (double)strtoll(v, &end, 10);
        if (end == v || *end || errno || !isfinite(x))
            return usage_error(cmd, "--%s: '%s' is not a number", s->name, v);
        if (s->min <= s->max && (x < s->min || x > s->max)) {
            char range[80];
            snprintf(range, sizeof range, "%g..%g", s->min, s->max);
            fprintf(stderr, "metalearn %s: --%s: %s is outside %s\n", cmd->name, s->name, v, range);
            fprintf(stderr, "usage: metalearn %s %s\n", cmd->name, cmd->synopsis);
            return ARGS_USAGE;
        }
        if (s->type == ARG_INT) *(int *)s->target = (int)x;
        else if (s->type == ARG_U64) *(uint64_t *)s->target = (uint64_t)strtoull(v, NULL, 10);
        else *(float *)s->target = (float)x;
        return ARGS_OK;
    }
    case ARG_STRING:
        if (!*v) return usage_error(cmd, "--%s: empty value%s", s->name, "");
        *(const char **)s->target = v;
        return ARGS_OK;
    case ARG_FLAG:
        *(int *)s->target = 1;
        return ARGS_OK;
    }
    return ARGS_USAGE;
}

int args_parse(const arg_cmd *cmd, int argc, char **argv, int first, const char **positional,
               int max_positional, int *n_positional) {
    *n_positional = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            args_print_help(cmd);
            return ARGS_HELP;
        }
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            if (*n_positional >= max_positional) return usage_error(cmd, "unexpected argument '%s'%s", a, "");
            positional[(*n_positional)++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const arg_spec *s = NULL;
        for (int k = 0; k < cmd->n_specs; k++)
            if (strlen(cmd->specs[k].name) == len && !strncmp(cmd->specs[k].name, name, len)) s = &cmd->specs[k];
        if (!s) return usage_error(cmd, "unknown option '%s'%s", a, "");
        const char *value = NULL;
        if (s->type == ARG_FLAG) {
            if (eq) return usage_error(cmd, "--%s takes no value%s", s->name, "");
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return usage_error(cmd, "--%s needs a value%s", s->name, "");
            value = argv[++i];
        }
        int r = set_value(cmd, s, value);
        if (r) return r;
    }
    return ARGS_OK;
}

const char *args_find_value(int argc, char **argv, int first, const char *name) {
    size_t len = strlen(name);
    for (int i = first; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) || strncmp(argv[i] + 2, name, len)) continue;
        if (argv[i][2 + len] == '=') return argv[i] + 3 + len;
        if (argv[i][2 + len] == 0 && i + 1 < argc) return argv[i + 1];
    }
    return NULL;
}
