/* test_cli_args.c: the command line's parser (src/cli/args.c) over an option
 * table of the library: a flag given on the command line wins over the same
 * setting in a --config file, and the rest of the file stays. One of the
 * test_cli_* programs, which link the CLI's objects; every other test links
 * the library alone. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "metalearn/options.h"
#include "ml_test.h"

static struct {
    int epochs, quiet;
    float lr;
    const char *optimizer;
} g_o;
static const ml_option g_specs[] = {
    {"epochs", ML_OPT_INT, &g_o.epochs, "passes", 1, 1000},
    {"lr", ML_OPT_FLOAT, &g_o.lr, "learning rate", 1e-12, 1e3},
    {"optimizer", ML_OPT_STRING, &g_o.optimizer, "sgd or adam", 1, 0},
    {"quiet", ML_OPT_FLAG, &g_o.quiet, "quiet", 0, 0},
};
static const ml_option_set g_cmd = {"train", "[options]", "test command", g_specs, 4};

static void test_flags_win_over_config_file(void) {
    char err[256] = "", path[1024];
    snprintf(path, sizeof path, "%s/test_cli_args.json", ml_test_tmp_dir());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("{\"epochs\": 50, \"lr\": 0.5, \"optimizer\": \"sgd\"}", f);
    fclose(f);
    g_o.epochs = 10, g_o.lr = 1e-3f, g_o.optimizer = "adam", g_o.quiet = 0;
    CHECK_INT_EQ(ml_options_apply_file(&g_cmd, path, err, sizeof err), ML_OPTIONS_OK);
    char *argv[] = {"metalearn", "train", "--lr", "0.25", "--quiet"};
    const char *pos[1];
    int npos;
    CHECK_INT_EQ(args_parse(&g_cmd, 5, argv, 2, pos, 0, &npos), ARGS_OK);
    CHECK_INT_EQ(g_o.epochs, 50); /* from the file */
    CHECK(g_o.lr == 0.25f);       /* the command line wins */
    CHECK(!strcmp(g_o.optimizer, "sgd"));
    CHECK_INT_EQ(g_o.quiet, 1);
    CHECK_INT_EQ(npos, 0);
    remove(path);
}

int main(void) {
    ML_RUN(test_flags_win_over_config_file);
    return ml_test_summary();
}
