/* test_tasks.c: regression task families (sinusoid, linear, CSV). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "metalearn/tasks.h"
#include "ml_test.h"

#define PI 3.14159265358979323846

/* Writes `text` to <tmp>/<name> and returns the path (static buffer per slot). */
static const char *write_file(const char *name, const char *text) {
    static char paths[4][512];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, 512, "%s/%s", ml_test_tmp_dir(), name);
    FILE *fp = fopen(p, "wb");
    if (!fp) return p;
    fwrite(text, 1, strlen(text), fp);
    fclose(fp);
    return p;
}

static ml_status load_csv(const char *path, ml_task_family *f, char *err, size_t errlen) {
    char spec[600];
    snprintf(spec, sizeof spec, "csv:%s", path);
    return ml_task_family_init(f, spec, err, errlen);
}

/* ---- synthetic families -------------------------------------------------------- */

static void test_sinusoid_ranges(void) {
    ml_task_family f;
    char err[256];
    CHECK_INT_EQ(ml_task_family_init(&f, "sinusoid", err, sizeof err), ML_OK);
    CHECK_INT_EQ(f.in_dim, 1);
    CHECK_INT_EQ(ml_task_family_n_info(&f), 2);
    ml_regression_task t;
    CHECK_INT_EQ(ml_regression_task_alloc(&t, 10, 20, 1), ML_OK);
    ml_rng rng;
    ml_rng_seed(&rng, 42);
    double amin = 1e9, amax = -1e9, pmin = 1e9, pmax = -1e9, xmin = 1e9, xmax = -1e9;
    double worst = 0.0;
    for (int it = 0; it < 2000; it++) {
        int k = 1 + it % 10;
        if (ml_task_sample(&f, &rng, k, 20, &t, err, sizeof err) != ML_OK) {
            CHECK(0);
            break;
        }
        CHECK_INT_EQ(t.k, k);
        double a = t.info[0], ph = t.info[1];
        amin = fmin(amin, a), amax = fmax(amax, a), pmin = fmin(pmin, ph), pmax = fmax(pmax, ph);
        for (int i = 0; i < t.k + t.q; i++) {
            float x = i < t.k ? t.xs[i] : t.xq[i - t.k];
            float y = i < t.k ? t.ys[i] : t.yq[i - t.k];
            xmin = fmin(xmin, x), xmax = fmax(xmax, x);
            worst = fmax(worst, fabs(y - (float)(a * sin((double)x - ph))));
        }
    }
    CHECK(amin >= 0.1 && amax <= 5.0 && amin < 0.2 && amax > 4.9);
    CHECK(pmin >= 0.0 && pmax <= PI && pmin < 0.05 && pmax > PI - 0.05);
    CHECK(xmin >= -5.0 && xmax <= 5.0 && xmin < -4.99 && xmax > 4.99);
    CHECK_NEAR(worst, 0.0, 0.0, 0.0); /* y is computed from the stored float x */
    /* The grid helper computes the same function. */
    float gx[3] = {-1.0f, 0.0f, 2.5f}, gy[3];
    CHECK_INT_EQ(ml_task_eval_on_grid(&f, t.info, gx, 3, gy), ML_OK);
    for (int i = 0; i < 3; i++) CHECK_NEAR(gy[i], t.info[0] * sin(gx[i] - t.info[1]), 1e-6, 1e-6);
    /* k larger than the buffer, k = 0: errors, not overruns. */
    CHECK(ml_task_sample(&f, &rng, 11, 5, &t, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "holds 10 support");
    CHECK(ml_task_sample(&f, &rng, 0, 5, &t, err, sizeof err) != ML_OK);
    ml_regression_task_free(&t);
    ml_task_family_free(&f);
}

static void test_linear_exact(void) {
    ml_task_family f;
    char err[256];
    CHECK_INT_EQ(ml_task_family_init(&f, "linear", err, sizeof err), ML_OK);
    CHECK_INT_EQ(f.in_dim, 1);
    ml_task_family_free(&f);
    CHECK_INT_EQ(ml_task_family_init(&f, "linear:3", err, sizeof err), ML_OK);
    CHECK_INT_EQ(f.in_dim, 3);
    CHECK_INT_EQ(ml_task_family_n_info(&f), 4);
    ml_regression_task t;
    CHECK_INT_EQ(ml_regression_task_alloc(&t, 5, 7, 3), ML_OK);
    ml_rng rng;
    ml_rng_seed(&rng, 7);
    for (int it = 0; it < 200; it++) {
        CHECK_INT_EQ(ml_task_sample(&f, &rng, 5, 7, &t, err, sizeof err), ML_OK);
        for (int j = 0; j < 4; j++) CHECK(t.info[j] >= -3.0 && t.info[j] <= 3.0);
        for (int i = 0; i < t.q; i++) {
            double s = t.info[3];
            for (int j = 0; j < 3; j++) {
                CHECK(t.xq[i * 3 + j] >= -5.0f && t.xq[i * 3 + j] <= 5.0f);
                s += t.info[j] * t.xq[i * 3 + j];
            }
            CHECK_NEAR(t.yq[i], s, 1e-5, 1e-6);
        }
    }
    float y[7];
    CHECK_INT_EQ(ml_task_eval_on_grid(&f, t.info, t.xs, 5, y), ML_OK);
    CHECK(memcmp(y, t.ys, 5 * sizeof(float)) == 0);
    /* A buffer with the wrong input size is refused. */
    ml_regression_task t1;
    CHECK_INT_EQ(ml_regression_task_alloc(&t1, 5, 5, 1), ML_OK);
    CHECK_INT_EQ(ml_task_sample(&f, &rng, 5, 5, &t1, err, sizeof err), ML_ERR_SHAPE);
    ml_regression_task_free(&t1);
    ml_regression_task_free(&t);
    ml_task_family_free(&f);
}

static void test_bad_specs(void) {
    ml_task_family f;
    char err[256];
    CHECK_INT_EQ(ml_task_family_init(&f, "cosine", err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "unknown task family 'cosine'");
    CHECK_INT_EQ(ml_task_family_init(&f, "linear:0", err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "linear:D");
    CHECK_INT_EQ(ml_task_family_init(&f, "linear:x", err, sizeof err), ML_ERR_ARG);
    CHECK_INT_EQ(ml_task_family_init(&f, "linear:99", err, sizeof err), ML_ERR_ARG);
    CHECK_INT_EQ(ml_task_family_init(&f, "csv:", err, sizeof err), ML_ERR_ARG);
    ml_task_family_free(&f); /* zeroed after failure: safe */
}

static void test_same_seed_same_tasks(void) {
    const char *specs[2] = {"sinusoid", "linear:2"};
    for (int s = 0; s < 2; s++) {
        ml_task_family f;
        CHECK_INT_EQ(ml_task_family_init(&f, specs[s], NULL, 0), ML_OK);
        ml_regression_task a, b, c;
        CHECK_INT_EQ(ml_regression_task_alloc(&a, 5, 10, f.in_dim), ML_OK);
        CHECK_INT_EQ(ml_regression_task_alloc(&b, 5, 10, f.in_dim), ML_OK);
        CHECK_INT_EQ(ml_regression_task_alloc(&c, 5, 10, f.in_dim), ML_OK);
        ml_rng r1, r2, r3;
        ml_rng_seed(&r1, 123);
        ml_rng_seed(&r2, 123);
        ml_rng_seed(&r3, 124);
        int same = 1, differ = 0;
        size_t nx = 5 * (size_t)f.in_dim, nq = 10 * (size_t)f.in_dim;
        for (int it = 0; it < 20; it++) {
            CHECK_INT_EQ(ml_task_sample(&f, &r1, 5, 10, &a, NULL, 0), ML_OK);
            /* in two parts (draws, then targets): the same task, the same stream */
            CHECK_INT_EQ(ml_task_sample_draws(&f, &r2, 5, 10, &b, NULL, 0), ML_OK);
            ml_task_fill_targets(&f, &b);
            CHECK_INT_EQ(ml_task_sample(&f, &r3, 5, 10, &c, NULL, 0), ML_OK);
            same &= memcmp(a.info, b.info, sizeof a.info) == 0 &&
                    memcmp(a.xs, b.xs, nx * 4) == 0 && memcmp(a.ys, b.ys, 5 * 4) == 0 &&
                    memcmp(a.xq, b.xq, nq * 4) == 0 && memcmp(a.yq, b.yq, 10 * 4) == 0;
            differ += memcmp(a.info, c.info, sizeof a.info) != 0 && memcmp(a.xs, c.xs, nx * 4) != 0;
        }
        CHECK(same);
        CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
        CHECK_INT_EQ(differ, 20);
        ml_regression_task_free(&a);
        ml_regression_task_free(&b);
        ml_regression_task_free(&c);
        ml_task_family_free(&f);
    }
}

/* ---- CSV ------------------------------------------------------------------------- */

static const char *GOOD_CSV =
    "\xEF\xBB\xBFtask,split,x1,x2,y\r\n"
    "alpha,support,1,2,3\r\n"
    "beta,support,10,20,30\r\n"
    "\r\n"
    "alpha,query,4,5,9\r\n"
    "  alpha , Support , 0.5 , -1.5e1 , 7\r\n"
    "\"be,ta\",query,1,1,1\r\n"
    "beta,QUERY,11,21,31\r\n"
    "beta,query,12,22,32\r\n"
    "\"be,ta\",support,2,2,\"2\"\r\n"
    "alpha,query,6,7,13"; /* no final newline */

static void test_csv_load(void) {
    const char *path = write_file("ml_tasks_good.csv", GOOD_CSV);
    ml_task_family f;
    char err[256] = "";
    CHECK_INT_EQ(load_csv(path, &f, err, sizeof err), ML_OK);
    CHECK_STR_CONTAINS(err, "");
    CHECK_INT_EQ(f.kind, ML_TASKS_CSV);
    CHECK_INT_EQ(f.in_dim, 2);
    CHECK_INT_EQ(f.n_tasks, 3);
    if (f.n_tasks != 3) {
        fprintf(stderr, "  err: %s\n", err);
        ml_task_family_free(&f);
        return;
    }
    CHECK(strcmp(ml_task_family_task_name(&f, 0), "alpha") == 0);
    CHECK(strcmp(ml_task_family_task_name(&f, 1), "beta") == 0);
    CHECK(strcmp(ml_task_family_task_name(&f, 2), "be,ta") == 0);
    CHECK(ml_task_family_task_name(&f, 3) == NULL);
    const ml_csv_task *a = &f.tasks[0], *b = &f.tasks[1];
    CHECK_INT_EQ(a->n_support, 2);
    CHECK_INT_EQ(a->n_query, 2);
    CHECK_INT_EQ(b->n_support, 1);
    CHECK_INT_EQ(b->n_query, 2);
    CHECK_NEAR(a->xs[2], 0.5, 0, 0);
    CHECK_NEAR(a->xs[3], -15.0, 0, 0);
    CHECK_NEAR(a->ys[1], 7.0, 0, 0);
    CHECK_NEAR(a->xq[2], 6.0, 0, 0);
    CHECK_NEAR(a->yq[1], 13.0, 0, 0);
    CHECK_NEAR(b->yq[1], 32.0, 0, 0);
    CHECK_NEAR(f.tasks[2].ys[0], 2.0, 0, 0);
    int ms, mq;
    ml_task_family_max_points(&f, &ms, &mq);
    CHECK_INT_EQ(ms, 2);
    CHECK_INT_EQ(mq, 2);

    ml_regression_task t;
    CHECK_INT_EQ(ml_regression_task_alloc(&t, ms, mq, f.in_dim), ML_OK);
    CHECK_INT_EQ(ml_task_get_csv(&f, 0, 0, 0, &t, err, sizeof err), ML_OK);
    CHECK_INT_EQ(t.k, 2);
    CHECK_INT_EQ(t.q, 2);
    CHECK_INT_EQ(t.task_index, 0);
    CHECK_NEAR(t.xs[0], 1.0, 0, 0);
    CHECK_NEAR(t.ys[0], 3.0, 0, 0);
    CHECK_NEAR(t.xq[1], 5.0, 0, 0);
    CHECK_INT_EQ(ml_task_get_csv(&f, 1, 1, 1, &t, err, sizeof err), ML_OK);
    CHECK_INT_EQ(t.q, 1);
    CHECK_NEAR(t.yq[0], 31.0, 0, 0);
    CHECK(ml_task_get_csv(&f, 3, 0, 0, &t, err, sizeof err) != ML_OK);
    CHECK(ml_task_get_csv(&f, 1, 2, 1, &t, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "task 'beta' has 1 support points, 2 requested");

    /* Random draws: every task shows up, subsets are real rows, same seed
     * gives the same sequence. */
    ml_rng r1, r2;
    ml_rng_seed(&r1, 5);
    ml_rng_seed(&r2, 5);
    int seen[3] = {0, 0, 0}, both[2] = {0, 0};
    ml_regression_task u;
    CHECK_INT_EQ(ml_regression_task_alloc(&u, ms, mq, f.in_dim), ML_OK);
    for (int it = 0; it < 300; it++) {
        CHECK_INT_EQ(ml_task_sample(&f, &r1, 1, 0, &t, err, sizeof err), ML_OK);
        CHECK_INT_EQ(ml_task_sample(&f, &r2, 1, 0, &u, err, sizeof err), ML_OK);
        CHECK(t.task_index == u.task_index && t.ys[0] == u.ys[0] && t.q == u.q);
        if (t.task_index < 0 || t.task_index > 2) continue;
        seen[t.task_index]++;
        const ml_csv_task *ct = &f.tasks[t.task_index];
        CHECK_INT_EQ(t.k, 1);
        CHECK_INT_EQ(t.q, ct->n_query);
        int found = 0;
        for (int i = 0; i < ct->n_support; i++)
            found |= ct->ys[i] == t.ys[0] && ct->xs[2 * i] == t.xs[0] && ct->xs[2 * i + 1] == t.xs[1];
        CHECK(found);
        if (t.task_index == 0) both[t.ys[0] == 7.0f]++;
    }
    CHECK(seen[0] > 50 && seen[1] > 50 && seen[2] > 50);
    CHECK(both[0] > 10 && both[1] > 10);
    CHECK(ml_task_sample(&f, &r1, 5, 0, &t, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "support points, 5 requested");
    ml_regression_task_free(&u);
    ml_regression_task_free(&t);

    /* A buffer too small for "all points" is an error, not an overrun. */
    CHECK_INT_EQ(ml_regression_task_alloc(&t, 1, 1, f.in_dim), ML_OK);
    CHECK(ml_task_get_csv(&f, 0, 0, 0, &t, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "the task buffer holds 1");
    ml_regression_task_free(&t);
    CHECK_INT_EQ(ml_task_eval_on_grid(&f, t.info, NULL, 0, NULL), ML_ERR_ARG);
    ml_task_family_free(&f);
    remove(path);
}

static void test_csv_no_header_one_input(void) {
    const char *path = write_file("ml_tasks_nohdr.csv", "7,support,1,2\n7,query,3,4\n\n\n");
    ml_task_family f;
    char err[256];
    CHECK_INT_EQ(load_csv(path, &f, err, sizeof err), ML_OK);
    CHECK_INT_EQ(f.in_dim, 1);
    CHECK_INT_EQ(f.n_tasks, 1);
    if (f.n_tasks == 1) {
        CHECK(strcmp(f.tasks[0].name, "7") == 0);
        CHECK_NEAR(f.tasks[0].yq[0], 4.0, 0, 0);
    }
    ml_task_family_free(&f);
    remove(path);
}

typedef struct {
    const char *text, *want1, *want2;
} bad_case;

static void test_csv_errors(void) {
    const bad_case cases[] = {
        {"task,split,x1,x2,y\na,support,1,2,3\na,query,1,2,3\na,query,1,2,3\n"
         "a,support,1,2,3\na,support,1,2,3\na,query,1,2\n",
         ":7: expected 5 columns (task, split, 2 inputs, target), found 4", NULL},
        {"a,support,1,3\na,query,1\n", ":2: expected 4 columns (task, split, 1 input, target), found 3", NULL},
        {"task,split,x\na,support,1\n", ":1: expected at least 4 columns", "found 3"},
        {"task,split,x,y\na,support,1,2\na,query,1,2\nb,support,1,2\na,query,abc,2\n",
         ":5: column 3 ('abc') is not a number", NULL},
        {"a,support,1,2\na,query,1,2x\n", ":2: column 4 ('2x') is not a number", NULL},
        {"a,support,1,2\na,train,1,2\n", ":2: column 2 ('train') must be 'support' or 'query'", NULL},
        {"a,support,1,2\na,query,1,2\nb,support,3,4\n", ": task 'b' has no query points", NULL},
        {"a,query,1,2\na,support,1,2\nb,query,3,4\n", ": task 'b' has no support points", NULL},
        {"", ": file is empty", NULL},
        {"\r\n  \n", ": file is empty", NULL},
        {"task,split,x,y\r\n", ": no data rows after the header", NULL},
        {"a,support,nan,2\na,query,1,2\n", ":1: column 3 ('nan') is not finite", NULL},
        {"a,support,1,2\na,query,1,-inf\n", ":2: column 4 ('-inf') is not finite", NULL},
        {"a,support,1,1e39\na,query,1,2\n", ":1: column 4 ('1e39') is out of float range", NULL},
        {"a,support,1,2\na,query,,2\n", ":2: column 3 is empty", NULL},
        {",support,1,2\na,query,1,2\n", ":1: column 1 (task id) is empty", NULL},
        {"a,support,1,2\n\"a,query,1,2\n", ":2: a quoted field is not closed", NULL},
        {"a,support,1,2\n\"a\"x,query,1,2\n", ":2: column 1: unexpected text", NULL},
        {"a,support\n", ":1: expected at least 4 columns", "found 2"},
        {"a,support,1,2\na,query,1\0,2\n", ":2: contains a NUL byte", NULL},
    };
    char name[64], err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "ml_tasks_bad%zu.csv", i);
        const char *path;
        if (strstr(cases[i].want1, "NUL")) {
            /* strlen-based writer would stop at the NUL: write by hand. */
            static const char nul_text[] = "a,support,1,2\na,query,1\0,2\n";
            path = write_file(name, "");
            FILE *fp = fopen(path, "wb");
            if (fp) {
                fwrite(nul_text, 1, sizeof nul_text - 1, fp);
                fclose(fp);
            }
        } else {
            path = write_file(name, cases[i].text);
        }
        ml_task_family f;
        err[0] = '\0';
        ml_status st = load_csv(path, &f, err, sizeof err);
        CHECK(st != ML_OK);
        CHECK_STR_CONTAINS(err, name);
        CHECK_STR_CONTAINS(err, cases[i].want1);
        if (cases[i].want2) CHECK_STR_CONTAINS(err, cases[i].want2);
        CHECK(strchr(err, '\n') == NULL);
        CHECK(f.tasks == NULL && f.path == NULL && f.n_tasks == 0);
        ml_task_family_free(&f);
        remove(path);
    }
    /* Missing file. */
    ml_task_family f;
    char path[512];
    snprintf(path, sizeof path, "%s/ml_tasks_missing_%d.csv", ml_test_tmp_dir(), 12345);
    remove(path);
    CHECK_INT_EQ(load_csv(path, &f, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "ml_tasks_missing_12345.csv: cannot open: No such file or directory");
    /* A directory. */
    CHECK(load_csv(ml_test_tmp_dir(), &f, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, ml_test_tmp_dir());
}

/* ---- failure paths: every allocation failing in turn leaks nothing -------------- */


static void test_csv_alloc_failures(void) {
    const char *path = write_file("ml_tasks_oom.csv", GOOD_CSV);
    ml_allocator a = ml_test_counting_allocator();
    ml_set_allocator(&a);
    ml_test_live = 0;
    char err[256];
    int ok_at = 0;
    for (uint64_t n = 1; n < 100 && !ok_at; n++) {
        ml_task_family f;
        ml_alloc_fail_after(n);
        ml_status st = load_csv(path, &f, err, sizeof err);
        ml_alloc_fail_after(0);
        if (st == ML_OK) {
            ok_at = (int)n;
            CHECK_INT_EQ(f.n_tasks, 3);
        } else {
            CHECK_INT_EQ(st, ML_ERR_NOMEM);
            CHECK_STR_CONTAINS(err, "ml_tasks_oom.csv");
        }
        ml_task_family_free(&f);
        CHECK_INT_EQ(ml_test_live, 0);
    }
    CHECK(ok_at > 5);
    ml_set_allocator(NULL);
    remove(path);
}

/* A larger file: parsing stays linear and fast. */
static void test_csv_many_tasks(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/ml_tasks_many.csv", ml_test_tmp_dir());
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (!fp) return;
    for (int t = 0; t < 2000; t++)
        for (int i = 0; i < 10; i++)
            fprintf(fp, "task%d,%s,%d,%d.5\n", t, i < 6 ? "support" : "query", i, t);
    fclose(fp);
    ml_task_family f;
    char err[256];
    double t0 = ml_test_cpu_seconds();
    CHECK_INT_EQ(load_csv(path, &f, err, sizeof err), ML_OK);
    double cpu = ml_test_cpu_seconds() - t0;
    printf("  2000 tasks, 20000 rows: %.3f s of CPU\n", cpu);
    CHECK(cpu < 0.5);
    CHECK_INT_EQ(f.n_tasks, 2000);
    if (f.n_tasks == 2000) {
        CHECK(strcmp(f.tasks[1234].name, "task1234") == 0);
        CHECK_INT_EQ(f.tasks[1234].n_support, 6);
        CHECK_INT_EQ(f.tasks[1234].n_query, 4);
        CHECK_NEAR(f.tasks[1234].yq[3], 1234.5, 0, 0);
        CHECK_NEAR(f.tasks[1234].xq[3], 9.0, 0, 0);
    }
    ml_task_family_free(&f);
    remove(path);
}

/* Writes head, then `blank` empty lines; returns the file's size. */
static size_t write_with_blank_lines(const char *path, const char *head, int blank) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    fputs(head, fp);
    for (int i = 0; i < blank; i++) fputc('\n', fp);
    size_t size = (size_t)ftell(fp);
    fclose(fp);
    return size;
}

/* The most the loaders hold at once while reading path (whatever the outcome). */
static long long csv_peak_bytes(const char *path, int numbers) {
    ml_allocator a = ml_test_counting_allocator();
    ml_set_allocator(&a);
    ml_test_live = 0;
    ml_test_live_bytes = ml_test_peak_bytes = 0;
    char err[256];
    if (numbers) {
        float *v = NULL;
        int64_t rows;
        int cols;
        if (ml_csv_read_numbers(path, &v, &rows, &cols, err, sizeof err) == ML_OK) ml_free(v);
    } else {
        ml_task_family f;
        load_csv(path, &f, err, sizeof err);
        ml_task_family_free(&f);
    }
    ml_set_allocator(NULL);
    CHECK_INT_EQ(ml_test_live, 0);
    return ml_test_peak_bytes;
}

/* Memory in proportion to the file: blank lines (free to write) and a wide
 * first line used to size the tables for lines x columns (1 MB of newlines:
 * 45 MB; a 100 kB file with a 1000-column first line: 400 MB). */
static void test_csv_memory_follows_the_file(void) {
    char path[512], head[8192];
    snprintf(path, sizeof path, "%s/ml_tasks_blank.csv", ml_test_tmp_dir());
    size_t size = write_with_blank_lines(path, "t,support,1,2\nt,query,3,4\n", 1000000);
    CHECK(csv_peak_bytes(path, 0) < 20 * (long long)size);
    CHECK(csv_peak_bytes(path, 1) < 20 * (long long)size);

    int n = snprintf(head, sizeof head, "t,support");
    for (int j = 0; j < 1000; j++) n += snprintf(head + n, sizeof head - (size_t)n, ",%d", j % 10);
    snprintf(head + n, sizeof head - (size_t)n, "\n");
    size = write_with_blank_lines(path, head, 100000);
    CHECK(csv_peak_bytes(path, 0) < 20 * (long long)size);
    CHECK(csv_peak_bytes(path, 1) < 20 * (long long)size);
    remove(path);
}

/* Counts checked at setup: every task must have the rows; 0 = all (CSV only). */
static void test_family_check(void) {
    char err[512];
    ml_task_family f;
    const char *path = write_file("ml_tasks_check.csv", "a,support,1,2\na,support,2,2\na,query,1,3\n"
                                                        "b,support,1,2\nb,query,3,3\nb,query,4,3\n");
    CHECK_INT_EQ(load_csv(path, &f, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_task_family_check(&f, 1, 1, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_task_family_check(&f, 0, 0, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_task_family_check(&f, 2, -1, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "task 'b' has only 1 support rows");
    CHECK_INT_EQ(ml_task_family_check(&f, -1, 2, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "task 'a' has only 1 query rows");
    ml_task_family_free(&f);
    CHECK_INT_EQ(ml_task_family_init(&f, "sinusoid", err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_task_family_check(&f, 1000, 1000, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_task_family_check(&f, 5, 0, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "sinusoid tasks are drawn afresh");
}

/* A task split deals whole tasks: parts are disjoint, cover the tasks, follow
 * the seed, survive a JSON round trip by name, and training draws stay in the
 * train part; a family too small for a part is refused. */
static void test_csv_task_split(void) {
    char path[512], json[512], err[512];
    snprintf(path, sizeof path, "%s/ml_tasks_split.csv", ml_test_tmp_dir());
    snprintf(json, sizeof json, "%s/ml_tasks_split.json", ml_test_tmp_dir());
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (!fp) return;
    for (int t = 0; t < 20; t++) fprintf(fp, "task%d,support,%d,1\ntask%d,query,%d,2\n", t, t, t, t);
    fclose(fp);
    ml_task_family f;
    CHECK_INT_EQ(load_csv(path, &f, err, sizeof err), ML_OK);
    const double fr[3] = {0.6, 0.1, 0.3};
    ml_task_split a, b, c;
    ml_rng rng;
    ml_rng_seed(&rng, 7);
    CHECK_INT_EQ(ml_task_split_make(&f, fr, &rng, &a, err, sizeof err), ML_OK);
    CHECK_INT_EQ(a.n[0], 12);
    CHECK_INT_EQ(a.n[1], 2);
    CHECK_INT_EQ(a.n[2], 6);
    int seen[20] = {0};
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < a.n[p]; i++) seen[a.idx[p][i]]++;
    for (int t = 0; t < 20; t++) CHECK_INT_EQ(seen[t], 1);
    ml_rng_seed(&rng, 7);
    CHECK_INT_EQ(ml_task_split_make(&f, fr, &rng, &b, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_task_split_write_json(&a, &f, json, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_task_split_read_json(json, &f, &c, err, sizeof err), ML_OK);
    for (int p = 0; p < 3; p++) {
        CHECK_INT_EQ(memcmp(a.idx[p], b.idx[p], sizeof(int32_t) * a.n[p]), 0);
        CHECK_INT_EQ(c.n[p], a.n[p]);
        CHECK_INT_EQ(memcmp(a.idx[p], c.idx[p], sizeof(int32_t) * a.n[p]), 0);
    }
    /* Training draws come from the train part only. */
    CHECK_INT_EQ(ml_task_family_draw_from(&f, a.idx[0], a.n[0], err, sizeof err), ML_OK);
    ml_regression_task t;
    CHECK_INT_EQ(ml_regression_task_alloc(&t, 1, 1, 1), ML_OK);
    int outside = 0;
    for (int i = 0; i < 500; i++) {
        CHECK_INT_EQ(ml_task_sample(&f, &rng, 1, 1, &t, err, sizeof err), ML_OK);
        int in = 0;
        for (int k = 0; k < a.n[0]; k++) in |= a.idx[0][k] == t.task_index;
        outside += !in;
    }
    CHECK_INT_EQ(outside, 0);
    ml_regression_task_free(&t);
    ml_task_split_free(&b);
    ml_task_split_free(&c);
    /* 20 tasks cannot give a 0.01 validation part: refused, naming the file. */
    const double tiny[3] = {0.9, 0.01, 0.09};
    CHECK_INT_EQ(ml_task_split_make(&f, tiny, &rng, &b, err, sizeof err) != ML_OK, 1);
    CHECK_STR_CONTAINS(err, "ml_tasks_split.csv");
    /* A split naming a task the file lacks is refused. */
    fp = fopen(json, "wb");
    if (fp) {
        fputs("{\"format\":\"metalearn-task-split\",\"train\":[\"task1\"],\"val\":[],\"test\":[\"nope\"]}", fp);
        fclose(fp);
    }
    CHECK_INT_EQ(ml_task_split_read_json(json, &f, &c, err, sizeof err) != ML_OK, 1);
    CHECK_STR_CONTAINS(err, "nope");
    ml_task_split_free(&a);
    ml_task_split_free(&b);
    ml_task_family_free(&f);
}

int main(void) {
    mkdir(ml_test_tmp_dir(), 0777); /* CTest points ML_TEST_TMP at a folder it does not create */
    ML_RUN(test_sinusoid_ranges);
    ML_RUN(test_linear_exact);
    ML_RUN(test_bad_specs);
    ML_RUN(test_same_seed_same_tasks);
    ML_RUN(test_csv_load);
    ML_RUN(test_csv_no_header_one_input);
    ML_RUN(test_csv_errors);
    ML_RUN(test_csv_alloc_failures);
    ML_RUN(test_csv_many_tasks);
    ML_RUN(test_csv_memory_follows_the_file);
    ML_RUN(test_family_check);
    ML_RUN(test_csv_task_split);
    return ml_test_summary();
}
