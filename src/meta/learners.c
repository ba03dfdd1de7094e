/* learners.c: the learner table, one row per learner (what it adapts, which
 * losses it fits, its defaults, its extra learned tensors and the hooks that
 * train and evaluate it), and the ml_algo_* questions, all read from it.
 * Adding a learner: its file with the hooks, one row here, one ml_algo
 * constant in metalearn/meta.h. */
#include <stdio.h>
#include <string.h>

#include "learner.h"

#define GRADIENT_DEFAULTS .min_inner_steps = 1, .default_meta_batch = 25, .default_eval_steps = "1,10"
#define METRIC_DEFAULTS                                                                                              \
    .adapts = ML_ADAPT_NONE, .metric = 1, .any_ways = 1, .classifies_only = 1, .default_meta_batch = 1,          \
    .default_eval_steps = "1,10"
/* OML: the head learns online; one trajectory per outer step and one pass
 * per evaluation step, as in the paper. */
#define OML_DEFAULTS ML_ADAPT_HEAD, .min_inner_steps = 1, .default_meta_batch = 1, .default_eval_steps = "1",   \
                     .online_head = 1, .class_head = 1, .own_options = "remember"

static const ml__learner table[] = {
    [ML_ALGO_MAML] = {{"maml", "MAML, exact second order (Finn et al. 2017)", ML_ADAPT_ALL, GRADIENT_DEFAULTS},
                      .step_task = ml__gradient_step_task, .eval_task = ml__gradient_eval_task, .second_order = 1},
    [ML_ALGO_FOMAML] = {{"fomaml", "first-order MAML (inner gradients taken as constants)", ML_ADAPT_ALL,
                         GRADIENT_DEFAULTS},
                        .step_task = ml__gradient_step_task, .eval_task = ml__gradient_eval_task},
    [ML_ALGO_METASGD] = {{"metasgd", "Meta-SGD: MAML with a learned rate per parameter (Li et al. 2017)",
                          ML_ADAPT_ALL, GRADIENT_DEFAULTS, .init_takes_extras = 1},
                         .extras = ml__metasgd_extras, .step_task = ml__gradient_step_task,
                         .eval_task = ml__gradient_eval_task, .second_order = 1},
    [ML_ALGO_REPTILE] = {{"reptile", "Reptile: k SGD steps, then move towards them (Nichol et al. 2018)",
                          ML_ADAPT_ALL, GRADIENT_DEFAULTS},
                         .step_task = ml__reptile_step_task, .eval_task = ml__gradient_eval_task},
    [ML_ALGO_MULTITASK] = {{"multitask", "one model on the summed loss of many tasks, fine-tuned on the new one",
                            ML_ADAPT_ALL, .default_meta_batch = 25, .default_eval_steps = "1,10"},
                           .step_task = ml__multitask_step_task, .eval_task = ml__gradient_eval_task},
    [ML_ALGO_ANIL] = {{"anil", "ANIL: MAML adapting only the head (Raghu et al. 2020)", ML_ADAPT_HEAD,
                       GRADIENT_DEFAULTS},
                      .step_task = ml__gradient_step_task, .eval_task = ml__gradient_eval_task, .second_order = 1},
    [ML_ALGO_PROTONET] = {{"protonet", "Prototypical Networks: nearest class mean, Euclidean (Snell et al. 2017)",
                           METRIC_DEFAULTS},
                          .step_task = ml__metric_step_task, .eval_task = ml__metric_eval_task,
                          .episode_head = ml__protonet_head},
    [ML_ALGO_MATCHING] = {{"matching", "Matching Networks: attention over the support set (Vinyals et al. 2016)",
                           METRIC_DEFAULTS, .own_options = "matching-scale"},
                          .extras = ml__matching_extras, .step_task = ml__metric_step_task,
                          .eval_task = ml__metric_eval_task, .episode_head = ml__matching_head},
    [ML_ALGO_R2D2] = {{"r2d2", "R2-D2: ridge regression head (Bertinetto et al. 2019)", METRIC_DEFAULTS},
                      .extras = ml__r2d2_extras, .step_task = ml__metric_step_task,
                      .eval_task = ml__metric_eval_task, .episode_head = ml__r2d2_head},
    [ML_ALGO_PRETRAIN] = {{"pretrain", "transfer baseline: a classifier over all training classes, a new head "
                           "per episode (Chen et al. 2019)",
                           ML_ADAPT_HEAD, .any_ways = 1, .classifies_only = 1, .default_meta_batch = 25,
                           .default_eval_steps = "100", .batch_training = 1, .own_options = "finetune"},
                          .extras = ml__pretrain_extras, .check = ml__pretrain_check,
                          .step_task = ml__pretrain_step_task, .eval_task = ml__pretrain_eval},
    [ML_ALGO_COSINE] = {{"cosine", "cosine nearest-class-mean head with a learned scale (Baseline++'s head, "
                         "Chen et al. 2019)", METRIC_DEFAULTS},
                        .extras = ml__cosine_extras, .step_task = ml__metric_step_task,
                        .eval_task = ml__metric_eval_task, .episode_head = ml__cosine_head},
    [ML_ALGO_OML] = {{"oml", "OML: a representation meta-learned so that a head learned online, one example at a "
                      "time, does not forget (Javed & White 2019)", OML_DEFAULTS},
                     .extras = ml__oml_extras, .step_task = ml__oml_step_task, .eval_task = ml__oml_eval_task,
                     .second_order = 1},
    [ML_ALGO_OML_FO] = {{"oml-fo", "OML with first-order inner gradients (taken as constants)", OML_DEFAULTS},
                        .extras = ml__oml_extras, .step_task = ml__oml_step_task,
                        .eval_task = ml__oml_eval_task},
};
_Static_assert(sizeof table / sizeof table[0] == ML_ALGO_COUNT, "one row per ml_algo");

const ml__learner *ml__learner_of(ml_algo a) { return (unsigned)a < ML_ALGO_COUNT ? &table[a] : NULL; }

const ml_learner_info *ml_algo_info(ml_algo a) { return (unsigned)a < ML_ALGO_COUNT ? &table[a].info : NULL; }

const char *ml_algo_name(ml_algo a) { return (unsigned)a < ML_ALGO_COUNT ? table[a].info.name : "?"; }

int ml_algo_parse(const char *name, ml_algo *out) {
    for (int i = 0; i < ML_ALGO_COUNT; i++)
        if (name && !strcmp(name, table[i].info.name)) {
            *out = (ml_algo)i;
            return 0;
        }
    return -1;
}

int ml_algo_reads_option(ml_algo a, const char *option) {
    const char *own = (unsigned)a < ML_ALGO_COUNT ? table[a].info.own_options : NULL;
    size_t len = strlen(option);
    for (const char *p = own; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) /* each name */
        if (strcspn(p, ",") == len && !strncmp(p, option, len)) return 1;
    return 0;
}

int ml_algo_is_metric(ml_algo a) { return (unsigned)a < ML_ALGO_COUNT && table[a].info.metric; }
int ml_algo_has_inner_steps(ml_algo a) { return (unsigned)a < ML_ALGO_COUNT && table[a].info.adapts != ML_ADAPT_NONE; }
int ml_algo_default_meta_batch(ml_algo a) { return (unsigned)a < ML_ALGO_COUNT ? table[a].info.default_meta_batch : 25; }

int ml_algo_fits_loss(ml_algo a, ml_loss_kind loss) {
    if ((unsigned)a >= ML_ALGO_COUNT) return 0;
    return loss == ML_LOSS_CROSS_ENTROPY || !table[a].info.classifies_only;
}

/* Names of the learners with fits(a) (all when fits is NULL), joined by ", "
 * and last_sep before the last. */
static const char *join_names(char *buf, size_t len, const char *last_sep, ml_loss_kind loss, int only_fitting) {
    if (!len) return buf;
    buf[0] = 0;
    int total = 0, n = 0;
    for (int i = 0; i < ML_ALGO_COUNT; i++) total += !only_fitting || ml_algo_fits_loss((ml_algo)i, loss);
    for (int i = 0; i < ML_ALGO_COUNT; i++) {
        if (only_fitting && !ml_algo_fits_loss((ml_algo)i, loss)) continue;
        const char *sep = !n++ ? "" : n == total && last_sep ? last_sep : ", ";
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", sep, table[i].info.name);
    }
    return buf;
}

const char *ml_algo_list(char *buf, size_t len, const char *last_sep) {
    return join_names(buf, len, last_sep, ML_LOSS_MSE, 0);
}

ml_status ml_algo_check_loss(ml_algo a, ml_loss_kind loss, char *err, size_t errlen) {
    if (ml_algo_fits_loss(a, loss)) return ML_OK;
    char fits[256];
    join_names(fits, sizeof fits, " or ", loss, 1);
    snprintf(err, errlen, "%s classifies only (%s tasks take %s)", ml_algo_name(a),
             loss == ML_LOSS_MSE ? "regression" : "these", fits);
    return ML_ERR_ARG;
}

/* ---- extra learned tensors ------------------------------------------------------------- */

void ml__meta_extra_set(ml_meta_tensor *t, const char *name, int ndim, const int64_t *shape, int64_t offset,
                        float init) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) t->numel *= t->shape[d] = shape[d];
    t->offset = offset;
    t->init = init;
}

int ml_meta_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out) {
    const ml__learner *l = ml__learner_of(cfg->algo);
    return l && l->extras ? l->extras(cfg, model, out) : 0;
}

int ml_meta_extra_count(const ml_meta_config *cfg) {
    const ml__learner *l = ml__learner_of(cfg->algo);
    ml_meta_tensor t[ML_META_MAX_EXTRAS];
    /* The episode heads' scalars need no model to count. */
    return l && l->info.metric && l->extras ? l->extras(cfg, NULL, t) : 0;
}
