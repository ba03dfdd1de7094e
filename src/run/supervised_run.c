/* supervised_run.c: the run folder of supervised training (`metalearn train
 * --algo supervised --out DIR`): config.json with the resolved settings, one
 * log line per epoch, and the checkpoint ml_supervised_train writes after
 * every epoch. Rank 0 alone writes; resume reads the folder on every rank. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "metalearn/dist.h"
#include "metalearn/io.h"
#include "metalearn/run.h"
#include "metalearn/rundir.h"
#include "metalearn/train.h"

ml_status ml_supervised_rundir_open(const ml_run_config *o, int resume, char *err, size_t errlen) {
    const char *dir = o->out;
    char path[4200];
    if (!dir) return ML_OK;
    if (resume) {
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
        if (access(path, F_OK) != 0 && errno == ENOENT) {
            snprintf(err, errlen, "%s: no checkpoint to resume from (the run stopped before its first epoch); start "
                                  "it again with --out %s --overwrite", dir, dir);
            return ML_ERR_STATE;
        }
        return ML_OK;
    }
    if (ml_dist_rank() != 0) return ML_OK;
    const char *held = ml_rundir_existing(dir);
    if (held && !o->overwrite) {
        snprintf(err, errlen, "%s already holds a run (%s): continue it with --resume %s, replace it with "
                              "--overwrite, or choose another --out", dir, held, dir);
        return ML_ERR_STATE;
    }
    if (ml_mkdir_p(dir, err, errlen)) return ML_ERR_IO;
    if (held && ml_rundir_clear(dir, 0, err, errlen)) return ML_ERR_IO;
    ml_run_config copy = *o; /* a saved config never carries permission to replace a run */
    copy.overwrite = 0;
    copy.resume = NULL;
    copy.stop_at = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    ml_option_set set = ml_run_config_option_set(&copy);
    return ml_options_write_json(&set, path, err, errlen) ? ML_ERR_IO : ML_OK;
}

ml_status ml_supervised_rundir_log(const char *dir, const ml_epoch_report *r, char *err, size_t errlen) {
    if (!dir || ml_dist_rank() != 0) return ML_OK;
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    snprintf(line, sizeof line,
             "{\"epoch\":%d,\"loss\":%.9g,\"train_acc\":%.9g,\"lr\":%.9g,\"seconds\":%.4f,\"cpu_seconds\":%.4f}",
             r->epoch, r->loss, r->train_acc, r->lr, r->seconds, r->cpu_seconds);
    return ml_jsonl_append(path, line, err, errlen);
}
