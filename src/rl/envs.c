/* The table of environment families: a new one is a file and a row here. */
#include <stdio.h>
#include <string.h>

#include "rl/env_internal.h"

static const ml_env_kind *const env_table[] = {&ml__env_nav2d, &ml__env_bandit, &ml__env_nav2d_rot};
#define N_ENVS ((int)(sizeof env_table / sizeof env_table[0]))

int ml_env_kind_count(void) { return N_ENVS; }
const ml_env_kind *ml_env_kind_at(int i) { return i >= 0 && i < N_ENVS ? env_table[i] : NULL; }

void ml_env_list(char *buf, size_t len) {
    size_t used = 0;
    if (len) buf[0] = 0;
    for (int i = 0; i < N_ENVS && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", env_table[i]->syntax);
}

ml_status ml_env_parse(const char *spec, ml_env *env, char *err, size_t errlen) {
    memset(env, 0, sizeof *env);
    if (!spec) spec = "";
    const char *colon = strchr(spec, ':');
    size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    for (int i = 0; i < N_ENVS; i++) {
        const ml_env_kind *k = env_table[i];
        if (strlen(k->name) != name_len || strncmp(k->name, spec, name_len) != 0) continue;
        int wants_arg = strchr(k->syntax, ':') != NULL;
        if (wants_arg != (colon != NULL)) {
            snprintf(err, errlen, "--env %s: expected %s", spec, k->syntax);
            return ML_ERR_ARG;
        }
        env->kind = k;
        return k->init(env, colon ? colon + 1 : NULL, err, errlen);
    }
    char list[256];
    ml_env_list(list, sizeof list);
    snprintf(err, errlen, "--env '%s': unknown environment (known: %s)", spec, list);
    return ML_ERR_ARG;
}
