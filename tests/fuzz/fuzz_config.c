/* fuzz_config.c: a config JSON applied to `metalearn train`'s option table,
 * the way `eval RUN` / `train --resume RUN` read a run's config.json
 * (ml_run_config_load_run: defaults, the file, the legacy dataset rule, the
 * default evaluation steps; --config goes through the same ml_options_apply_file)
 * on a fresh ml_run_config each run. Then cmd_train's first look at the result
 * (--algo parsed), and a round trip: what ml_options_write_json writes for the
 * accepted settings must read back to the same file, byte for byte. */
#include "fuzz_util.h"

#include "metalearn/options.h"
#include "cli/train_opts.h"
#include "metalearn/meta.h"

static size_t slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *dir = fuzz_path("run");
    mkdir(dir, 0755);
    fuzz_write("run/config.json", data, size);
    static ml_run_config o, o2;
    char err[1024] = "";
    if (ml_run_config_load_run(&o, dir, err, sizeof err)) {
        if (!err[0] || strchr(err, '\n')) abort();
        ml_options_free_strings();
        return 0;
    }
    ml_algo a;
    if (strcmp(o.algo, "supervised")) (void)ml_algo_parse(o.algo, &a); /* as cmd_train does next */

    int n;
    const ml_option *specs = ml_run_config_options(&o, &n);
    ml_option_set cmd = {"train", train_synopsis, train_about(), specs, n};
    const char *p1 = fuzz_path("rt1.json"), *p2 = fuzz_path("rt2.json");
    if (ml_options_write_json(&cmd, p1, err, sizeof err) != ML_OPTIONS_OK) abort();
    ml_run_config_default(&o2);
    specs = ml_run_config_options(&o2, &n);
    cmd.options = specs;
    if (ml_options_apply_file(&cmd, p1, err, sizeof err) != ML_OPTIONS_OK) {
        fprintf(stderr, "written config does not read back: %s\n", err);
        abort();
    }
    if (ml_options_write_json(&cmd, p2, err, sizeof err) != ML_OPTIONS_OK) abort();
    static char b1[1 << 16], b2[1 << 16];
    size_t n1 = slurp(p1, b1, sizeof b1), n2 = slurp(p2, b2, sizeof b2);
    if (n1 != n2 || memcmp(b1, b2, n1)) {
        fprintf(stderr, "config round trip differs:\n%.*s\n%.*s\n", (int)n1, b1, (int)n2, b2);
        abort();
    }
    ml_options_free_strings();
    return 0;
}
