/* continual_internal.h: the learner the continual-learning protocol drives
 * (continual.c): a linear head on features there, the whole network on
 * images in continual_net.c. Not installed. */
#ifndef ML_EVAL_CONTINUAL_INTERNAL_H
#define ML_EVAL_CONTINUAL_INTERNAL_H

#include "metalearn/continual.h"

typedef struct ml__continual_learner ml__continual_learner;
struct ml__continual_learner {
    /* a new learner with C outputs (a zero head; the network back at its start); 0 or -1 */
    int (*reset)(ml__continual_learner *l, int C);
    /* one SGD step on row x with label; 0 or -1 */
    int (*step)(ml__continual_learner *l, const float *x, int label, float lr);
    /* the predicted class of row x, or -1 */
    int (*predict)(ml__continual_learner *l, const float *x);
};

/* The protocol (ml_continual_evaluate's orders, rate choice on val and
 * summaries) with learners lv on val and lt on test; oracle_last_only: the
 * oracle after all classes only. */
ml_status ml__continual_evaluate_with(const ml_continual_data *val, const ml_continual_data *test,
                                      const ml_continual_options *o, ml__continual_learner *lv,
                                      ml__continual_learner *lt, int oracle_last_only, ml_continual_result *res,
                                      char *err, size_t errlen);

#endif
