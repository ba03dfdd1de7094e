/* test_rundir.c: the run folder's guard, clearing, stale temporaries, log
 * repair and checkpoint timing (metalearn/rundir.h), and the all-or-nothing
 * log append of metalearn/io.h under a full disk (RLIMIT_FSIZE: write()
 * stops at the limit, then fails with EFBIG, as on a disk that fills up). */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metalearn/io.h"
#include "metalearn/rundir.h"
#include "ml_test.h"

static char g_dir[512];

static const char *tp(const char *name) {
    static char buf[8][768];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", g_dir, name);
    return b;
}

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) fputs(text, f), fclose(f);
}

/* Whether the file holds exactly the text want. */
static int file_is(const char *path, const char *want) {
    size_t n;
    char *text = ml_test_slurp(path, &n);
    int same = text && n == strlen(want) && !memcmp(text, want, n);
    free(text);
    return same;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* A pid that is certainly not running: a child that has been reaped. */
static long dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return (long)p;
}

static void test_existing_and_clear(void) {
    char err[256] = "";
    const char *d = tp("run_a");
    CHECK(ml_rundir_existing(d) == NULL); /* missing folder */
    mkdir(d, 0755);
    CHECK(ml_rundir_existing(d) == NULL); /* empty folder */
    char p[800];
    snprintf(p, sizeof p, "%s/notes.txt", d);
    put(p, "mine");
    CHECK(ml_rundir_existing(d) == NULL); /* other files do not make a run */
    const char *files[] = {"config.json", "log.jsonl", "eval.json", "split.json", "checkpoint.safetensors"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", d, files[i]);
        put(p, "x");
        const char *held = ml_rundir_existing(d);
        CHECK(held != NULL);
    }
    CHECK_STR_CONTAINS(ml_rundir_existing(d), "checkpoint.safetensors");
    CHECK_INT_EQ(ml_rundir_clear(d, 1, err, sizeof err), ML_OK);
    snprintf(p, sizeof p, "%s/split.json", d);
    CHECK(exists(p)); /* kept when asked */
    CHECK_INT_EQ(ml_rundir_clear(d, 0, err, sizeof err), ML_OK);
    CHECK(!exists(p));
    snprintf(p, sizeof p, "%s/notes.txt", d);
    CHECK(exists(p)); /* not a run file: never touched */
    snprintf(p, sizeof p, "%s/log.jsonl", d);
    CHECK(!exists(p));
    CHECK_STR_CONTAINS(ml_rundir_existing(d), "config.json"); /* rewritten by the caller */
}

static void test_clean_temps(void) {
    const char *d = tp("run_t");
    mkdir(d, 0755);
    char dead[800], mine[800], live[800], other[800], odd[800];
    snprintf(dead, sizeof dead, "%s/checkpoint.safetensors.tmp.%ld", d, dead_pid());
    snprintf(mine, sizeof mine, "%s/log.jsonl.tmp.%ld", d, (long)getpid());
    snprintf(live, sizeof live, "%s/checkpoint.safetensors.tmp.%ld", d, (long)getppid());
    snprintf(other, sizeof other, "%s/data.bin.tmp.%ld", d, dead_pid());
    snprintf(odd, sizeof odd, "%s/eval.json.tmp.12x", d);
    const char *all[] = {dead, mine, live, other, odd};
    for (int i = 0; i < 5; i++) put(all[i], "partial");
    CHECK_INT_EQ(ml_rundir_clean_temps(d, NULL, 0), 2);
    CHECK(!exists(dead));
    CHECK(!exists(mine));
    CHECK(exists(live));  /* a live writer's */
    CHECK(exists(other)); /* not one of the run's files */
    CHECK(exists(odd));   /* not our naming pattern */
    static const char *const names[] = {"data.bin"};
    CHECK_INT_EQ(ml_rundir_clean_temps(d, names, 1), 1);
    CHECK(!exists(other));
    CHECK_INT_EQ(ml_rundir_clean_temps(tp("missing"), NULL, 0), 0);

    /* A writer killed with -9 and never reaped is a zombie: its temporary is stale. */
    pid_t z = fork();
    if (z == 0) _exit(0);
    char zpath[800];
    snprintf(zpath, sizeof zpath, "%s/checkpoint.safetensors.tmp.%ld", d, (long)z);
    put(zpath, "partial");
    /* Wait for its exit but leave it unreaped (WNOWAIT): a zombie now, however
     * loaded the machine (a fixed sleep raced the child's exit). */
    siginfo_t si;
    while (waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT) == -1 && errno == EINTR) {}
    CHECK_INT_EQ(ml_rundir_clean_temps(d, NULL, 0), 1);
    CHECK(!exists(zpath));
    waitpid(z, NULL, 0);
}

static const char *log_lines(int from, int to, int step) {
    static char buf[4096];
    buf[0] = 0;
    for (int i = from; i <= to; i += step)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "{\"iter\":%d,\"loss\":0.5,\"elapsed_s\":%d.5}\n", i, i);
    return buf;
}

static void test_log_trim(void) {
    char err[256] = "", want[4096];
    ml_runlog_tail t;
    const char *p = tp("log.jsonl");
    /* missing: an empty log */
    unlink(p);
    CHECK_INT_EQ(ml_runlog_trim(p, 100, &t, err, sizeof err), ML_OK);
    CHECK_INT_EQ(t.kept, 0);
    CHECK(!exists(p));

    /* already consistent: not rewritten (same inode) */
    put(p, log_lines(10, 50, 10));
    struct stat a, b;
    stat(p, &a);
    CHECK_INT_EQ(ml_runlog_trim(p, 50, &t, err, sizeof err), ML_OK);
    stat(p, &b);
    CHECK(a.st_ino == b.st_ino);
    CHECK_INT_EQ(t.kept, 5);
    CHECK_INT_EQ(t.dropped, 0);
    CHECK_INT_EQ(t.last_iter, 50);
    CHECK_NEAR(t.elapsed_s, 50.5, 0, 0);

    /* lines past the checkpoint and a torn tail go */
    snprintf(want, sizeof want, "%s{\"iter\":60,\"lo", log_lines(10, 50, 10));
    put(p, want);
    CHECK_INT_EQ(ml_runlog_trim(p, 30, &t, err, sizeof err), ML_OK);
    snprintf(want, sizeof want, "%s", log_lines(10, 30, 10));
    CHECK(file_is(p, want));
    CHECK_INT_EQ(t.dropped, 3);
    CHECK_INT_EQ(t.last_iter, 30);

    /* an old resume that went back (40, 50, then 30, 40 again) and a torn
     * line that a later append ran into: strictly increasing afterwards */
    char mixed[4096];
    snprintf(mixed, sizeof mixed, "%s", log_lines(10, 50, 10)); /* (log_lines reuses one buffer) */
    snprintf(mixed + strlen(mixed), sizeof mixed - strlen(mixed), "%s", log_lines(30, 40, 10));
    snprintf(mixed + strlen(mixed), sizeof mixed - strlen(mixed), "{\"iter\":45,\"lo{\"iter\":50,\"loss\":1}\n");
    snprintf(mixed + strlen(mixed), sizeof mixed - strlen(mixed), "%s", log_lines(50, 60, 10));
    put(p, mixed);
    CHECK_INT_EQ(ml_runlog_trim(p, 60, &t, err, sizeof err), ML_OK);
    CHECK(file_is(p, log_lines(10, 60, 10)));
    CHECK_INT_EQ(t.kept, 6);
    CHECK_INT_EQ(t.last_iter, 60);

    /* a log that cannot be replaced is left as it was */
    const char *d = tp("ro");
    mkdir(d, 0755);
    char q[800];
    snprintf(q, sizeof q, "%s/log.jsonl", d);
    snprintf(want, sizeof want, "%s{\"iter\":4", log_lines(10, 20, 10));
    put(q, want);
    chmod(d, 0555);
    if (access(d, W_OK) != 0) { /* (root may write anyway) */
        CHECK_INT_EQ(ml_runlog_trim(q, 100, &t, err, sizeof err), ML_ERR_IO);
        CHECK_STR_CONTAINS(err, "log.jsonl");
        CHECK(file_is(q, want));
    }
    chmod(d, 0755);
}

static void test_checkpoint_clock(void) {
    ml_checkpoint_clock c;
    ml_checkpoint_clock_start(&c, 100, 60, 1000.0);
    CHECK(!ml_checkpoint_clock_due(&c, 1, 1000.5));
    CHECK(ml_checkpoint_clock_due(&c, 100, 1000.5)); /* by iterations */
    CHECK(ml_checkpoint_clock_due(&c, 7, 1060.0));   /* by time */
    ml_checkpoint_clock_saved(&c, 1060.0);
    CHECK(!ml_checkpoint_clock_due(&c, 8, 1100.0));
    ml_checkpoint_clock_start(&c, 100, 0, 0.0); /* 0: by iterations only */
    CHECK(!ml_checkpoint_clock_due(&c, 7, 1e9));
}

/* A disk that fills up in the middle of a line: the append is undone. */
static void test_append_all_or_nothing(void) {
    char err[256] = "";
    const char *p = tp("full.jsonl");
    unlink(p);
    CHECK_INT_EQ(ml_jsonl_append(p, "{\"iter\":1}", err, sizeof err), ML_OK);
    char line[400];
    memset(line, 'x', sizeof line);
    memcpy(line, "{\"s\":\"", 6);
    memcpy(line + sizeof line - 3, "\"}", 3);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 100; /* room for a part of the line only */
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    ml_status s = ml_jsonl_append(p, line, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_INT_EQ(s, ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "full.jsonl");
    CHECK(!strchr(err, '\n'));
    CHECK(file_is(p, "{\"iter\":1}\n")); /* no torn line */
    CHECK_INT_EQ(ml_jsonl_append(p, "{\"iter\":2}", err, sizeof err), ML_OK);
    CHECK(file_is(p, "{\"iter\":1}\n{\"iter\":2}\n"));
}

/* plot's reader: every line's curve point, validation values where present,
 * more lines than one growth step, a torn tail skipped, a bad line named. */
static void test_log_curves(void) {
    char err[256] = "";
    const char *p = tp("curves.jsonl");
    ml_runlog_curves c;
    unlink(p);
    CHECK_INT_EQ(ml_runlog_read_curves(p, &c, err, sizeof err), ML_OK); /* missing: no curve */
    CHECK_INT_EQ(c.n, 0);
    FILE *f = fopen(p, "w");
    for (int i = 1; i <= 600; i++)
        fprintf(f, i % 100 ? "{\"iter\":%d,\"loss\":%d.5}\n" : "{\"iter\":%d,\"loss\":%d.5,\"val_acc\":0.75}\n", i, i);
    fputs("{\"iter\":601,\"lo", f); /* torn */
    fclose(f);
    CHECK_INT_EQ(ml_runlog_read_curves(p, &c, err, sizeof err), ML_OK);
    CHECK_INT_EQ(c.n, 600);
    CHECK(c.iter[599] == 600 && c.loss[599] == 600.5);
    CHECK_INT_EQ(c.n_val, 6);
    CHECK(c.val_is_acc && c.val_iter[5] == 600 && c.val[5] == 0.75);
    ml_runlog_curves_free(&c);
    CHECK(c.iter == NULL && c.n == 0);
    put(p, "{\"iter\":1,\"loss\":0.5}\n{\"iter\":2}\n");
    CHECK_INT_EQ(ml_runlog_read_curves(p, &c, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "curves.jsonl:2:");
    ml_runlog_curves_free(&c);
    /* Present but unreadable (a folder): an error naming it, not "no curve". */
    unlink(p);
    CHECK_INT_EQ(mkdir(p, 0755), 0);
    CHECK(ml_runlog_read_curves(p, &c, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "curves.jsonl: read failed");
    ml_runlog_curves_free(&c);
    rmdir(p);
}

/* One writer per folder: a second lock (another open, as another process
 * makes) is refused naming the folder, and the folder is free again once the
 * first is released. A missing folder is an error, not a crash. */
static void test_one_writer(void) {
    char err[256] = "";
    const char *d = tp("run_lock");
    mkdir(d, 0755);
    int a = ml_rundir_lock(d, err, sizeof err);
    CHECK(a >= 0 || a == -2);
    if (a >= 0) {
        CHECK(ml_rundir_lock(d, err, sizeof err) == -1);
        CHECK(strstr(err, d) && strstr(err, "another process is writing"));
    }
    ml_rundir_unlock(a);
    int b = ml_rundir_lock(d, err, sizeof err);
    CHECK(b >= 0 || b == -2);
    ml_rundir_unlock(b);
    CHECK(ml_rundir_lock(tp("no_such_run"), err, sizeof err) == -1 && strstr(err, "no_such_run"));
    ml_rundir_unlock(-1); /* nothing held: a no-op */
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/test_rundir.%ld", ml_test_tmp_dir(), (long)getpid());
    char err[256];
    if (ml_mkdir_p(g_dir, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    ML_RUN(test_existing_and_clear);
    ML_RUN(test_clean_temps);
    ML_RUN(test_log_trim);
    ML_RUN(test_checkpoint_clock);
    ML_RUN(test_append_all_or_nothing);
    ML_RUN(test_log_curves);
    ML_RUN(test_one_writer);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    return ml_test_summary();
}
