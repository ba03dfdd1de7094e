/* What the run layer needs of the meta-RL learner beyond metalearn/rl.h. */
#ifndef ML_RL_INTERNAL_H
#define ML_RL_INTERNAL_H

#include <stddef.h>

#include "metalearn/rl.h"

/* ml_rl_save with the writer's message (file and reason, e.g. a full disk). */
ml_status ml__rl_save_err(ml_rl *rl, const char *path, char *err, size_t errlen);

#endif
