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

/* Optimal-string-alignment distance (Levenshtein plus adjacent swaps,
 * "inner-rl" -> "inner-lr" is 1), '_' equal to '-'; stops at 99. */
static int edit_distance(const char *a, size_t la, const char *b) {
    size_t lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            char x = a[i - 1] == '_' ? '-' : a[i - 1], y = b[j - 1];
            int best = d[i - 1][j - 1] + (x != y);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && x == b[j - 2] && (a[i - 2] == '_' ? '-' : a[i - 2]) == y && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *args_suggest_name(const char *const *names, int n, const char *name, size_t len) {
    const char *best = NULL;
    int best_d = 3; /* more than 2 edits is another word, not a slip */
    for (int k = 0; k < n; k++) {
        int d = edit_distance(name, len, names[k]);
        if (d < best_d && 2 * (size_t)d < len) best = names[k], best_d = d;
    }
    return best;
}

const char *args_suggest(const arg_cmd *cmd, const char *name, size_t len) {
    const char *names[256];
    int n = cmd->n_specs < 256 ? cmd->n_specs : 256;
    for (int k = 0; k < n; k++) names[k] = cmd->specs[k].name;
    return args_suggest_name(names, n, name, len);
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
        if (!s) {
            const char *near = args_suggest(cmd, name, len);
            if (near) return usage_error(cmd, "unknown option '%s' (did you mean --%s?)", a, near);
            return usage_error(cmd, "unknown option '%s'%s", a, "");
        }
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
