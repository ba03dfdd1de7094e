/* cmd_params.c: `metalearn params`: the tensor names and shapes of a model,
 * in the order of the flat parameter buffer (and of checkpoints), so that
 * weights can be moved to and from PyTorch by name. */
#include <stdio.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "metalearn/nn.h"

int cmd_params(int argc, char **argv) {
    const char *model = "cnn4";
    int c = 1, h = 28, w = 28, out = 5;
    const ml_option specs[] = {
        {"model", ML_OPT_STRING, &model, "mlp[:W1,W2,...] or cnn4[:FILTERS] (default cnn4)", 1, 0},
        {"channels", ML_OPT_INT, &c, "input channels (default 1)", 1, 4096},
        {"height", ML_OPT_INT, &h, "input height (default 28)", 1, 1 << 16},
        {"width", ML_OPT_INT, &w, "input width (default 28)", 1, 1 << 16},
        {"outputs", ML_OPT_INT, &out, "outputs / classes (default 5; 0 = cnn4 without head, an embedding)", 0, 1 << 20},
    };
    const ml_option_set cmd = {"params", "--model SPEC [--channels C --height H --width W --outputs K]",
                         "Lists a model's tensors (name and shape) in flat-buffer order.", specs,
                         (int)(sizeof specs / sizeof specs[0])};
    const char *pos[1];
    int npos;
    int r = args_parse(&cmd, argc, argv, 2, pos, 0, &npos);
    if (r == ARGS_HELP) return EXIT_OK;
    if (r) return EXIT_USAGE;
    char err[256];
    ml_model_spec spec;
    if (ml_model_spec_parse(model, &spec, err, sizeof err)) {
        fprintf(stderr, "metalearn params: --model: %s\n", err);
        return EXIT_USAGE;
    }
    spec.in_c = c;
    spec.in_h = h;
    spec.in_w = w;
    spec.n_out = out;
    ml_model m;
    if (ml_model_init(&m, &spec, err, sizeof err)) {
        fprintf(stderr, "metalearn params: %s\n", err);
        return EXIT_FAIL;
    }
    ml_model_print_params(&m, stdout);
    ml_model_free(&m);
    return EXIT_OK;
}
