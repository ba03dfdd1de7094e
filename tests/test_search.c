/* test_search.c: search spaces, sampling, mutation, crossover, selection and
 * the successive-halving schedule (metalearn/search.h). */
#include <cjson/cJSON.h>

#include "metalearn/search.h"
#include "ml_test.h"

static const char *k_space =
    "{\"inner-lr\": {\"log_uniform\": [0.001, 1]}, \"inner-steps\": {\"int\": [1, 5]},"
    " \"augment-rotate\": {\"uniform\": [0, 15]}, \"algo\": {\"choice\": [\"maml\", \"fomaml\", \"metasgd\"]},"
    " \"meta-batch\": {\"choice\": [5, 10, 25]}, \"rotations\": {\"choice\": [true, false]}}";

static int parse(const char *text, ml_search_space *s, char *err, size_t errlen) {
    cJSON *j = cJSON_Parse(text);
    ml_status st = ml_search_space_parse(j, "space.json", s, err, errlen);
    cJSON_Delete(j);
    return st;
}

static void test_parse_ok(void) {
    ml_search_space s;
    char err[256] = "";
    CHECK_INT_EQ(parse(k_space, &s, err, sizeof err), ML_OK);
    CHECK_INT_EQ(s.n, 6);
    CHECK_INT_EQ(s.params[0].kind, ML_PARAM_LOG_UNIFORM);
    CHECK_NEAR(s.params[0].lo, 0.001, 0, 0);
    CHECK_INT_EQ(s.params[1].kind, ML_PARAM_INT);
    CHECK_INT_EQ(s.params[2].kind, ML_PARAM_UNIFORM);
    CHECK_INT_EQ(s.params[3].kind, ML_PARAM_CHOICE);
    CHECK_INT_EQ(s.params[3].n_choices, 3);
    CHECK(!strcmp(s.params[3].choices[2].string, "metasgd"));
    CHECK_INT_EQ(s.params[4].choices[2].type, ML_CHOICE_NUMBER);
    CHECK_INT_EQ(s.params[5].choices[0].type, ML_CHOICE_BOOL);
    ml_search_space_free(&s);
    /* A one-point range is a fixed value, not an error. */
    CHECK_INT_EQ(parse("{\"inner-steps\": {\"int\": [3, 3]}}", &s, err, sizeof err), ML_OK);
    ml_search_space_free(&s);
}

static void test_parse_errors(void) {
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[1, 2]", "non-empty object"},
        {"{}", "non-empty object"},
        {"{\"inner-lr\": {\"uniform\": [1, 0]}}", "'inner-lr': uniform range [1, 0] is empty"},
        {"{\"inner-lr\": {\"log_uniform\": [0, 1]}}", "'inner-lr': log_uniform needs 0 < lo"},
        {"{\"inner-lr\": {\"log_uniform\": [-1, 1]}}", "log_uniform needs 0 < lo"},
        {"{\"algo\": {\"choice\": []}}", "'algo': choice takes a non-empty list"},
        {"{\"algo\": {\"choice\": \"maml\"}}", "'algo': choice takes a non-empty list"},
        {"{\"algo\": {\"choice\": [[1]]}}", "choice values must be"},
        {"{\"inner-steps\": {\"int\": [1.5, 3]}}", "'inner-steps': int range needs integer bounds"},
        {"{\"inner-lr\": {\"normal\": [0, 1]}}", "unknown kind 'normal'"},
        {"{\"inner-lr\": {\"uniform\": [0]}}", "'inner-lr': uniform takes [lo, hi]"},
        {"{\"inner-lr\": {\"uniform\": [0, \"1\"]}}", "uniform takes [lo, hi]"},
        {"{\"inner-lr\": 0.1}", "'inner-lr': expected one of"},
        {"{\"inner-lr\": {\"uniform\": [0, 1], \"int\": [0, 1]}}", "expected one of"},
        {"{\"x\": {\"int\": [0, 1]}, \"x\": {\"int\": [0, 2]}}", "'x' appears twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ml_search_space s;
        char err[256] = "";
        CHECK_INT_EQ(parse(cases[i].text, &s, err, sizeof err), ML_ERR_ARG);
        CHECK_STR_CONTAINS(err, "space.json: ");
        CHECK_STR_CONTAINS(err, cases[i].want);
        CHECK_INT_EQ(s.n, 0); /* nothing left to free */
    }
}

/* v is a value of the space: inside every range, integers integral. */
static int in_space(const ml_search_space *s, const double *v) {
    for (int i = 0; i < s->n; i++) {
        const ml_search_param *p = &s->params[i];
        if (p->kind == ML_PARAM_CHOICE) {
            if (v[i] != floor(v[i]) || v[i] < 0 || v[i] >= p->n_choices) return 0;
        } else {
            if (!(v[i] >= p->lo && v[i] <= p->hi)) return 0;
            if (p->kind == ML_PARAM_INT && v[i] != floor(v[i])) return 0;
        }
    }
    return 1;
}

static void test_sample_in_range(void) {
    ml_search_space s;
    char err[256];
    CHECK_INT_EQ(parse(k_space, &s, err, sizeof err), ML_OK);
    ml_rng rng;
    ml_rng_seed(&rng, 7);
    double v[ML_SEARCH_MAX_PARAMS];
    int seen_int[6] = {0}, seen_choice[3] = {0}, low_decade = 0, bad = 0;
    for (int k = 0; k < 3000; k++) {
        ml_search_sample(&s, &rng, v);
        bad += !in_space(&s, v);
        if (v[1] >= 1 && v[1] <= 5) seen_int[(int)v[1]]++;
        if (v[3] >= 0 && v[3] < 3) seen_choice[(int)v[3]]++;
        low_decade += v[0] < 0.01;
    }
    CHECK_INT_EQ(bad, 0);
    for (int i = 1; i <= 5; i++) CHECK(seen_int[i] > 400); /* both ends reached */
    for (int i = 0; i < 3; i++) CHECK(seen_choice[i] > 800);
    /* Log-uniform over 3 decades: about a third in [0.001, 0.01). */
    CHECK_NEAR(low_decade / 3000.0, 1.0 / 3, 0.05, 0);
    ml_search_space_free(&s);
}

static void test_mutation_and_crossover_stay_in_space(void) {
    ml_search_space s;
    char err[256];
    CHECK_INT_EQ(parse(k_space, &s, err, sizeof err), ML_OK);
    ml_rng rng;
    ml_rng_seed(&rng, 11);
    double a[ML_SEARCH_MAX_PARAMS], b[ML_SEARCH_MAX_PARAMS], c[ML_SEARCH_MAX_PARAMS];
    int bad = 0, changed_choice = 0, from_parents = 1;
    for (int k = 0; k < 2000; k++) {
        ml_search_sample(&s, &rng, a);
        ml_search_sample(&s, &rng, b);
        /* Huge steps: everything must be clipped back into the space. */
        ml_search_mutate(&s, &rng, a, c, 1.0, k % 2 ? 5.0 : 0.1);
        bad += !in_space(&s, c);
        changed_choice += c[3] != a[3]; /* rate 1: a choice always moves to another option */
        ml_search_crossover(&s, &rng, a, b, c);
        bad += !in_space(&s, c);
        for (int i = 0; i < s.n; i++) from_parents &= c[i] == a[i] || c[i] == b[i];
    }
    CHECK_INT_EQ(bad, 0);
    CHECK_INT_EQ(changed_choice, 2000);
    CHECK(from_parents);
    /* Rate 0 copies the parent. */
    ml_search_mutate(&s, &rng, a, c, 0.0, 0.5);
    CHECK(!memcmp(a, c, (size_t)s.n * sizeof(double)));
    ml_search_space_free(&s);
}

static void test_deterministic_given_seed(void) {
    ml_search_space s;
    char err[256];
    CHECK_INT_EQ(parse(k_space, &s, err, sizeof err), ML_OK);
    double v1[64 * ML_SEARCH_MAX_PARAMS], v2[64 * ML_SEARCH_MAX_PARAMS];
    double scores[8] = {3, 1, NAN, 2, 5, 0.5, 4, 1};
    for (int run = 0; run < 2; run++) {
        double *v = run ? v2 : v1;
        ml_rng rng;
        ml_rng_seed(&rng, 42);
        for (int k = 0; k < 8; k++) ml_search_sample(&s, &rng, v + k * s.n);
        for (int k = 8; k < 64; k++) {
            int pa = ml_search_tournament(&rng, scores, 8, 3, 0), pb = ml_search_tournament(&rng, scores, 8, 3, 0);
            ml_search_crossover(&s, &rng, v + pa * s.n, v + pb * s.n, v + k * s.n);
            ml_search_mutate(&s, &rng, v + k * s.n, v + k * s.n, 0.3, 0.15);
        }
    }
    CHECK(!memcmp(v1, v2, (size_t)64 * s.n * sizeof(double)));
    ml_search_space_free(&s);
}

static void test_selection_and_rank(void) {
    double scores[6] = {3, NAN, 1, 5, 1, 2};
    int order[6];
    ml_search_rank(scores, 6, 0, order); /* lower is better; NaN last; ties by index */
    int want_min[6] = {2, 4, 5, 0, 3, 1};
    for (int i = 0; i < 6; i++) CHECK_INT_EQ(order[i], want_min[i]);
    ml_search_rank(scores, 6, 1, order);
    int want_max[6] = {3, 0, 5, 2, 4, 1};
    for (int i = 0; i < 6; i++) CHECK_INT_EQ(order[i], want_max[i]);
    ml_rng rng;
    ml_rng_seed(&rng, 3);
    int nan_won = 0, best_count = 0;
    for (int k = 0; k < 1000; k++) {
        int w = ml_search_tournament(&rng, scores, 6, 2, 1);
        nan_won += w == 1;
        best_count += ml_search_tournament(&rng, scores, 6, 64, 1) == 3;
    }
    /* A failed trial wins only if drawn twice (1/36). */
    CHECK(nan_won < 60);
    CHECK_INT_EQ(best_count, 1000);
    double all_nan[3] = {NAN, NAN, NAN};
    int w = ml_search_tournament(&rng, all_nan, 3, 3, 0);
    CHECK(w >= 0 && w < 3);
}

static void test_halving_schedule(void) {
    int it[16];
    CHECK_INT_EQ(ml_search_rungs(30, 90, 3, it, 16), 2);
    CHECK_INT_EQ(it[0], 30);
    CHECK_INT_EQ(it[1], 90);
    CHECK_INT_EQ(ml_search_rungs(10, 100, 3, it, 16), 3);
    CHECK_INT_EQ(it[0], 11);
    CHECK_INT_EQ(it[1], 33);
    CHECK_INT_EQ(it[2], 100);
    CHECK_INT_EQ(ml_search_rungs(2000, 20000, 3, it, 16), 3);
    CHECK_INT_EQ(it[0], 2222);
    CHECK_INT_EQ(it[2], 20000);
    CHECK_INT_EQ(ml_search_rungs(50, 50, 3, it, 16), 1);
    CHECK_INT_EQ(it[0], 50);
    CHECK_INT_EQ(ml_search_rungs(1, 1000, 2, it, 3), 3); /* capped: the largest rungs */
    CHECK_INT_EQ(it[0], 250);
    CHECK_INT_EQ(it[2], 1000);
    CHECK_INT_EQ(ml_search_rungs(0, 10, 3, it, 16), -1);
    CHECK_INT_EQ(ml_search_rungs(20, 10, 3, it, 16), -1);
    CHECK_INT_EQ(ml_search_rungs(1, 10, 1, it, 16), -1);
    /* Candidates per rung: 27 -> 9 -> 3 -> 1; 6 -> 2 -> 1 (never 0). */
    int n = 27, counts[4];
    for (int r = 0; r < 4; r++) {
        counts[r] = n;
        n = ml_search_promoted(n, 3);
    }
    CHECK_INT_EQ(counts[1], 9);
    CHECK_INT_EQ(counts[2], 3);
    CHECK_INT_EQ(counts[3], 1);
    CHECK_INT_EQ(ml_search_promoted(6, 3), 2);
    CHECK_INT_EQ(ml_search_promoted(2, 3), 1);
}

static void test_to_json(void) {
    ml_search_space s;
    char err[256];
    CHECK_INT_EQ(parse(k_space, &s, err, sizeof err), ML_OK);
    double v[6] = {0.0123, 4, 7.5, 2, 1, 0};
    cJSON *obj = cJSON_Parse("{\"algo\": \"maml\", \"task\": \"sinusoid\"}");
    CHECK_INT_EQ(ml_search_to_json(&s, v, obj), ML_OK);
    char *text = cJSON_PrintUnformatted(obj);
    CHECK_STR_CONTAINS(text, "\"algo\":\"metasgd\"");
    CHECK_STR_CONTAINS(text, "\"task\":\"sinusoid\"");
    CHECK_STR_CONTAINS(text, "\"inner-lr\":0.0123");
    CHECK_STR_CONTAINS(text, "\"inner-steps\":4");
    CHECK_STR_CONTAINS(text, "\"meta-batch\":10");
    CHECK_STR_CONTAINS(text, "\"rotations\":true");
    CHECK(strstr(text, "maml") == NULL); /* replaced, not repeated */
    cJSON_free(text);
    cJSON_Delete(obj);
    char buf[32];
    ml_search_format(&s.params[3], 1, buf, sizeof buf);
    CHECK(!strcmp(buf, "fomaml"));
    ml_search_format(&s.params[0], 0.012345678, buf, sizeof buf);
    CHECK(!strcmp(buf, "0.01235"));
    ml_search_space_free(&s);
}

int main(void) {
    ML_RUN(test_parse_ok);
    ML_RUN(test_parse_errors);
    ML_RUN(test_sample_in_range);
    ML_RUN(test_mutation_and_crossover_stay_in_space);
    ML_RUN(test_deterministic_given_seed);
    ML_RUN(test_selection_and_rank);
    ML_RUN(test_halving_schedule);
    ML_RUN(test_to_json);
    return ml_test_summary();
}
