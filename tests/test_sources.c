/* test_sources.c: the dataset-source table (metalearn/sources.h): every
 * spec the CLI documents parses to its row with its ARG, the lists for help
 * texts come from the table, and bad specs are refused with that list. */
#include <string.h>

#include "metalearn/sources.h"
#include "ml_test.h"

static void test_specs_find_their_rows(void) {
    const char *arg;
    const ml_source_info *s = ml_source_find("omniglot:a.zip,b:c.zip", &arg);
    CHECK(s && !strcmp(s->name, "omniglot") && s->kind == ML_SOURCE_IMAGES && s->has_alphabets);
    CHECK(!strcmp(arg, "a.zip,b:c.zip")); /* only the first ':' separates the name */
    s = ml_source_find("fashion-mnist", &arg);
    CHECK(s && s->supervised && s->idx_dir && arg == NULL);
    s = ml_source_find("idx:/data", &arg);
    CHECK(s && s->supervised && !s->idx_dir && !strcmp(arg, "/data"));
    CHECK(ml_source_find("folder:x", NULL)->load_images != NULL);
    s = ml_source_find("linear:3", &arg);
    CHECK(s && s->kind == ML_SOURCE_TASKS && s->init_tasks && !strcmp(arg, "3"));
    CHECK(ml_source_find("sinusoid", NULL)->kind == ML_SOURCE_TASKS);
    CHECK(ml_source_find("csv:f.csv", NULL)->arg == ML_SOURCE_ARG_REQUIRED);
    CHECK(ml_source_find("mnist", NULL) == NULL);
    CHECK(ml_source_find("omniglotx:a", NULL) == NULL);
    CHECK(ml_source_find(NULL, NULL) == NULL);
}

static void test_lists_and_refusals(void) {
    char buf[256], err[256];
    CHECK(!strcmp(ml_source_list(buf, sizeof buf, ML_SOURCE_IMAGES, 0, " or "),
                  "omniglot:PATH[,PATH...], fashion-mnist, idx:DIR or folder:DIR"));
    CHECK(!strcmp(ml_source_list(buf, sizeof buf, ML_SOURCE_IMAGES, 1, " or "), "fashion-mnist or idx:DIR"));
    CHECK(!strcmp(ml_source_list(buf, sizeof buf, ML_SOURCE_TASKS, 0, NULL), "sinusoid, linear[:D], sine-seq[:F], csv:FILE"));
    const ml_source_info *s;
    const char *arg;
    CHECK(ml_source_parse("folder:d", ML_SOURCE_IMAGES, "--dataset", &s, &arg, err, sizeof err) == ML_OK);
    CHECK(ml_source_parse("idx:", ML_SOURCE_IMAGES, "--dataset", &s, &arg, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "--dataset 'idx:': expected omniglot:PATH[,PATH...], fashion-mnist");
    CHECK(ml_source_parse("fashion-mnist:x", ML_SOURCE_IMAGES, "--dataset", &s, &arg, err, sizeof err) == ML_ERR_ARG);
    CHECK(ml_source_parse("sinusoid", ML_SOURCE_IMAGES, "--dataset", &s, &arg, err, sizeof err) == ML_ERR_ARG);
    ml_image_set set;
    memset(&set, 0, sizeof set);
    CHECK(ml_source_load_images("bogus", 0, NULL, &set, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "or folder:DIR");
    ml_task_family f;
    CHECK(ml_task_family_init(&f, "linear:2", err, sizeof err) == ML_OK && f.in_dim == 2);
    ml_task_family_free(&f);
    CHECK(ml_task_family_init(&f, "sinusoid:2", err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "expected sinusoid, linear[:D], sine-seq[:F] or csv:FILE");
}

int main(void) {
    ML_RUN(test_specs_find_their_rows);
    ML_RUN(test_lists_and_refusals);
    return ml_test_summary();
}
