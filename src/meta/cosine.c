/* cosine.c: a cosine nearest-class-mean learner, the episode head of
 * "Baseline++" (Chen et al. 2019, A Closer Look at Few-shot Classification)
 * trained episodically: prototypes are the class means of the support
 * embeddings, as in Prototypical Networks, but a query is scored by the
 * cosine similarity to each prototype times a learned scale s:
 *   logits[q, c] = s * <f_q / |f_q|, p_c / |p_c|>.
 * Cosines lie in [-1, 1], so without s the softmax could never be sharp;
 * s starts at 10 (Chen et al. use a fixed 2-10 depending on the set) and is
 * a meta-parameter ("cosine.scale" in checkpoints). Training and evaluation
 * are the metric learners' (metric.c); this file is the head and its scalar.
 * Its row is in learners.c. */
#include "meta_internal.h"

ml_tensor *ml_cosine_logits(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor *scale) {
    if (!fs || !fq || !scale) return NULL;
    ml_tensor *avg = ml__episode_label_matrix(ctx, ys, fs->shape[0], ways, 1);
    ml_tensor *protos = ml_matmul(ctx, avg, fs, 0, 0);                                              /* [ways, D] */
    ml_tensor *cos = ml_matmul(ctx, ml__unit_rows(ctx, fq), ml__unit_rows(ctx, protos), 0, 1); /* [nq, ways] */
    return ml_mul(ctx, cos, scale);
}

ml_tensor *ml__cosine_head(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor **extra) {
    return ml_cosine_logits(ctx, fs, ys, ways, fq, extra[0]);
}

int ml__cosine_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out) {
    (void)cfg;
    (void)model;
    ml__meta_extra_set(&out[0], "cosine.scale", 1, ML_SHAPE(1), 0, 10.0f);
    return 1;
}
