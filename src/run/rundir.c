/* rundir.c: a run folder's guard, cleanup, log repair and checkpoint timing
 * (see metalearn/rundir.h). */
#include "metalearn/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/errfmt.h"
#include "metalearn/io.h"

/* split.json last: ml_rundir_clear may keep it. */
static const char *const run_files[] = {"checkpoint.safetensors", "log.jsonl", "eval.json", "config.json", "split.json"};
#define N_RUN_FILES (int)(sizeof run_files / sizeof run_files[0])

static int file_exists(const char *dir, const char *name) {
    char path[4352];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return 0;
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- one writer per folder ------------------------------------------------ */

int ml_rundir_lock(const char *dir, char *err, size_t errlen) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        ml__errf(err, errlen, "%s: cannot open the folder to lock it: %s", dir, strerror(errno));
        return -1;
    }
    int r;
    do r = flock(fd, LOCK_EX | LOCK_NB);
    while (r && errno == EINTR);
    if (r == 0) return fd;
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK)
        ml__errf(err, errlen, "%s: another process is writing in this folder now (the same command started twice?); "
                              "wait for it to end or stop it", dir);
    else if (e == ENOLCK || e == ENOTSUP || e == EOPNOTSUPP)
        return -2; /* a file system without locks: go on unguarded, as before */
    else
        ml__errf(err, errlen, "%s: cannot lock the folder: %s", dir, strerror(e));
    return -1;
}

void ml_rundir_unlock(int lock) {
    if (lock >= 0) close(lock);
}

const char *ml_rundir_existing(const char *dir) {
    for (int i = 0; i < N_RUN_FILES; i++)
        if (file_exists(dir, run_files[i])) return run_files[i];
    return NULL;
}

ml_status ml_rundir_check_new(const char *dir, int overwrite, const char **held, char *err, size_t errlen) {
    const char *found = ml_rundir_existing(dir);
    if (held) *held = found;
    if (found && !overwrite) {
        snprintf(err, errlen, "%s already holds a run (%s): continue it with --resume %s, replace it with "
                              "--overwrite, or choose another --out", dir, found, dir);
        return ML_ERR_STATE;
    }
    return ML_OK;
}

ml_status ml_rundir_start_new(const char *dir, int overwrite, int *lock, char *err, size_t errlen) {
    const char *held;
    ml_status s = ml_rundir_check_new(dir, overwrite, &held, err, errlen);
    if (s) return s;
    if (ml_mkdir_p(dir, err, errlen)) return ML_ERR_IO;
    if (lock) {
        if ((*lock = ml_rundir_lock(dir, err, errlen)) == -1) return ML_ERR_STATE;
        if ((s = ml_rundir_check_new(dir, overwrite, &held, err, errlen)) != ML_OK) return s;
    }
    if (held && ml_rundir_clear(dir, 0, err, errlen)) return ML_ERR_IO;
    return ML_OK;
}

ml_status ml_rundir_clear(const char *dir, int keep_split, char *err, size_t errlen) {
    static const char *const cleared[] = {"checkpoint.safetensors", "log.jsonl", "eval.json", "split.json"};
    int n = keep_split ? 3 : 4;
    for (int i = 0; i < n; i++) {
        char path[4352];
        snprintf(path, sizeof path, "%s/%s", dir, cleared[i]);
        if (unlink(path) && errno != ENOENT) {
            ml__errf(err, errlen, "%s: cannot remove the old run's file: %s", path, strerror(errno));
            return ML_ERR_IO;
        }
    }
    return ML_OK;
}

/* ---- temporaries ------------------------------------------------------------------ */

/* "<name>.tmp.<digits>" with name in names -> the pid, else 0. */
static long temp_pid(const char *entry, const char *const *names, int n) {
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (strncmp(entry, names[i], len) || strncmp(entry + len, ".tmp.", 5)) continue;
        const char *digits = entry + len + 5;
        char *end;
        if (*digits < '1' || *digits > '9') return 0;
        long pid = strtol(digits, &end, 10);
        return *end || pid <= 0 ? 0 : pid;
    }
    return 0;
}

/* Whether pid is a running process. A zombie is not: a writer killed with
 * -9 whose parent is gone may stay one for long (a container's init need
 * not reap), and its temporary is as stale as a vanished writer's. */
static int pid_running(long pid) {
    if (kill((pid_t)pid, 0) && errno == ESRCH) return 0;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1; /* no /proc: trust kill() */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold spaces */
    return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

int ml_rundir_clean_temps(const char *dir, const char *const *names, int n_names) {
    if (!names) {
        names = run_files;
        n_names = N_RUN_FILES;
    }
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        long pid = temp_pid(e->d_name, names, n_names);
        if (!pid) continue;
        /* A live process other than us may be writing it right now; pid
         * reuse can only make us keep a stale file, never remove a live one. */
        if (pid != (long)getpid() && pid_running(pid)) continue;
        char path[4352];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        if (!unlink(path)) removed++;
    }
    closedir(d);
    return removed;
}

/* ---- the log ---------------------------------------------------------------------------- */

typedef struct kept_line {
    size_t off, len; /* with its '\n' */
    int iter;
    double elapsed;
} kept_line;

/* A complete log line -> its iteration (and elapsed_s); -1 if it is not a
 * log record. */
static int line_iter(const char *s, size_t len, double *elapsed) {
    cJSON *j = cJSON_ParseWithLength(s, len);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, "iter"), *el = cJSON_GetObjectItemCaseSensitive(j, "elapsed_s");
    int iter = cJSON_IsObject(j) && cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble <= 2e9
                   ? (int)it->valuedouble
                   : -1;
    *elapsed = cJSON_IsNumber(el) ? el->valuedouble : 0;
    cJSON_Delete(j);
    return iter;
}

ml_status ml_runlog_trim(const char *path, int max_iter, ml_runlog_tail *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st) && errno == ENOENT) return ML_OK;
    char *text;
    size_t len;
    ml_status s = ml_file_read_text(path, 0, &text, &len, err, errlen);
    if (s) return s;
    size_t n_lines = 1;
    for (size_t i = 0; i < len; i++) n_lines += text[i] == '\n';
    kept_line *kept = ml_malloc(n_lines * sizeof *kept);
    if (!kept) {
        ml_free(text);
        ml__errf(err, errlen, "%s: out of memory", path);
        return ML_ERR_NOMEM;
    }
    int n = 0, dropped = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - (text + pos)) + 1 : len - pos;
        double elapsed;
        /* an unterminated last line is torn whatever it holds */
        int iter = nl ? line_iter(text + pos, line_len - 1, &elapsed) : -1;
        if (iter < 0 || iter > max_iter) {
            dropped++;
        } else {
            /* A line at or before the last kept one: an earlier resume went
             * back and redid these iterations; the later lines are the run's. */
            while (n > 0 && kept[n - 1].iter >= iter) {
                n--;
                dropped++;
            }
            kept[n++] = (kept_line){pos, line_len, iter, elapsed};
        }
        pos += line_len;
    }
    if (dropped) {
        /* Compact in place (kept lines only move towards the start), then
         * replace the file in one atomic rename. */
        size_t w = 0;
        for (int i = 0; i < n; i++) {
            memmove(text + w, text + kept[i].off, kept[i].len);
            w += kept[i].len;
        }
        s = ml_file_write_atomic(path, text, w, err, errlen);
    }
    if (!s) {
        out->kept = n;
        out->dropped = dropped;
        if (n) {
            out->last_iter = kept[n - 1].iter;
            out->elapsed_s = kept[n - 1].elapsed;
        }
    }
    ml_free(kept);
    ml_free(text);
    return s;
}

/* ---- checkpoint timing ------------------------------------------------------------------ */

void ml_checkpoint_clock_start(ml_checkpoint_clock *c, int every_iters, double every_seconds, double now) {
    c->every_iters = every_iters > 0 ? every_iters : 0;
    c->every_seconds = every_seconds > 0 ? every_seconds : 0;
    c->last_save = now;
}

int ml_checkpoint_clock_due(const ml_checkpoint_clock *c, int done_iters, double now) {
    if (c->every_iters && done_iters % c->every_iters == 0) return 1;
    return c->every_seconds > 0 && now - c->last_save >= c->every_seconds;
}

void ml_checkpoint_clock_saved(ml_checkpoint_clock *c, double now) { c->last_save = now; }

/* ---- the log's curves, for plotting ---------------------------------------------------------- */

void ml_runlog_curves_free(ml_runlog_curves *c) {
    free(c->iter);
    free(c->loss);
    free(c->val_iter);
    free(c->val);
    memset(c, 0, sizeof *c);
}

/* Appends (x, y) to the pair of arrays xs/ys of *n entries (capacity *cap). */
static int push_point(double **xs, double **ys, int *n, int *cap, double x, double y) {
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 256;
        double *nx = realloc(*xs, (size_t)ncap * sizeof **xs);
        if (!nx) return -1;
        *xs = nx;
        double *ny = realloc(*ys, (size_t)ncap * sizeof **ys);
        if (!ny) return -1;
        *ys = ny;
        *cap = ncap;
    }
    (*xs)[*n] = x;
    (*ys)[(*n)++] = y;
    return 0;
}

ml_status ml_runlog_read_curves(const char *path, ml_runlog_curves *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char *text;
    ml_status rs = ml_file_read_text_if_present(path, 0, &text, NULL, err, errlen);
    if (rs != ML_OK || !text) return rs; /* no log: no curve; a folder or unreadable file: an error */
    /* An unterminated last line is a write cut short (metalearn/io.h asks
     * readers to skip it; --resume removes it). */
    char *end = strrchr(text, '\n');
    if (end) end[1] = 0;
    else text[0] = 0;
    ml_status st = ML_OK;
    int cap = 0, val_cap = 0, line_no = 0;
    for (char *line = strtok(text, "\n"); line && st == ML_OK; line = strtok(NULL, "\n")) {
        line_no++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, "iter"), *loss = cJSON_GetObjectItemCaseSensitive(j, "loss");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(j, "val_mse"), *acc = cJSON_GetObjectItemCaseSensitive(j, "val_acc");
        if (!cJSON_IsNumber(it) || !cJSON_IsNumber(loss)) {
            ml__errf(err, errlen, "%s:%d: expected an object with numeric \"iter\" and \"loss\"", path, line_no);
            st = ML_ERR_FORMAT;
        } else if (push_point(&out->iter, &out->loss, &out->n, &cap, it->valuedouble, loss->valuedouble)) {
            st = ML_ERR_NOMEM;
        } else {
            if (cJSON_IsNumber(acc)) {
                val = acc;
                out->val_is_acc = 1;
            }
            if (cJSON_IsNumber(val) &&
                push_point(&out->val_iter, &out->val, &out->n_val, &val_cap, it->valuedouble, val->valuedouble))
                st = ML_ERR_NOMEM;
        }
        if (st == ML_ERR_NOMEM) ml__errf(err, errlen, "%s: out of memory at line %d", path, line_no);
        cJSON_Delete(j);
    }
    ml_free(text);
    return st;
}
