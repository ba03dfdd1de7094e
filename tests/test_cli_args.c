/* test_cli_args.c: the command line's parser (src/cli/args.c) over an option
 * table of the library: a flag given on the command line wins over the same
 * setting in a --config file, and the rest of the file stays. One of the
 * test_cli_* programs, which link the CLI's objects; every other test links
 * the library alone. */
#include <stdint.h>
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

/* A seed is an unsigned 64-bit number: above 2^63 it parses on the command
 * line as it does in a config file's string, and bounds are printed as typed. */
static void test_u64_and_bounds_as_typed(void) {
    uint64_t seed = 0;
    int width = 0;
    const ml_option seed_opt = {"seed", ML_OPT_U64, &seed, "seed", 0, 1.8e19};
    const ml_option width_opt = {"width", ML_OPT_INT, &width, "width", 2, 1 << 20};
    char err[256] = "";
    CHECK_INT_EQ(ml_options_set_text(&seed_opt, "10000000000000000000", err, sizeof err), ML_OPTIONS_OK);
    CHECK(seed == 10000000000000000000ull);
    CHECK_INT_EQ(ml_options_set_text(&seed_opt, "9223372036854775808", err, sizeof err), ML_OPTIONS_OK);
    CHECK(seed == 9223372036854775808ull);
    CHECK_INT_EQ(ml_options_set_text(&seed_opt, "-1", err, sizeof err), ML_OPTIONS_BAD_VALUE);
    CHECK_STR_CONTAINS(err, "--seed: -1 is outside 0..1.8e+19");
    CHECK_INT_EQ(ml_options_set_text(&seed_opt, "99999999999999999999", err, sizeof err), ML_OPTIONS_BAD_VALUE);
    CHECK_STR_CONTAINS(err, "is not a number"); /* beyond 2^64 */
    CHECK_INT_EQ(ml_options_set_text(&width_opt, "1048577", err, sizeof err), ML_OPTIONS_BAD_VALUE);
    CHECK_STR_CONTAINS(err, "--width: 1048577 is outside 2..1048576");
}

int main(void) {
    ML_RUN(test_flags_win_over_config_file);
    ML_RUN(test_u64_and_bounds_as_typed);
    return ml_test_summary();
}
