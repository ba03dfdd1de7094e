/* args.c: the option parser (see args.h). Usage errors go to stderr, help to stdout. */
#include "cli/args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_hint(ml_option_type t) {
    switch (t) {
    case ML_OPT_INT:
    case ML_OPT_U64: return "N";
    case ML_OPT_FLOAT: return "X";
    case ML_OPT_STRING: return "S";
    case ML_OPT_FLAG: return "";
    }
    return "";
}

void args_print_help(const ml_option_set *cmd) {
    printf("usage: metalearn %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->synopsis, cmd->about);
    for (int i = 0; i < cmd->n_options; i++) {
        const ml_option *s = &cmd->options[i];
        char left[64];
        snprintf(left, sizeof left, "--%s %s", s->name, type_hint(s->type));
        printf("  %-24s %s\n", left, s->help);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

static int usage_error(const ml_option_set *cmd, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "metalearn %s: ", cmd->name);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nusage: metalearn %s %s\n(see metalearn %s --help)\n", cmd->name, cmd->synopsis, cmd->name);
    return ARGS_USAGE;
}

static int set_value(const ml_option_set *cmd, const ml_option *s, const char *v) {
    if (s->type == ML_OPT_FLAG) { /* on the command line a flag takes no value: present = on */
        *(int *)s->target = 1;
        return ARGS_OK;
    }
    char err[512];
    if (ml_options_set_text(s, v, err, sizeof err)) { /* a bad value: the option itself is right, no pointer to --help */
        fprintf(stderr, "metalearn %s: %s\nusage: metalearn %s %s\n", cmd->name, err, cmd->name, cmd->synopsis);
        return ARGS_USAGE;
    }
    return ARGS_OK;
}

int args_parse(const ml_option_set *cmd, int argc, char **argv, int first, const char **positional,
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
        const ml_option *s = NULL;
        for (int k = 0; k < cmd->n_options; k++)
            if (strlen(cmd->options[k].name) == len && !strncmp(cmd->options[k].name, name, len)) s = &cmd->options[k];
        if (!s) {
            const char *near = ml_options_suggest(cmd, name, len);
            if (near) return usage_error(cmd, "unknown option '%s' (did you mean --%s?)", a, near);
            return usage_error(cmd, "unknown option '%s'%s", a, "");
        }
        const char *value = NULL;
        if (s->type == ML_OPT_FLAG) {
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
