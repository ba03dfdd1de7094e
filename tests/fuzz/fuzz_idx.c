/* fuzz_idx.c: the IDX (MNIST) reader, plain and gzip'd. The input is one
 * IDX file, or an image file and a label file joined by the line
 * "\n--labels--\n" (read as a pair, like `--dataset idx:DIR`). The first byte
 * picks whether the file(s) are gzip-compressed before reading, so the
 * parser behind zlib sees mutated content, not only mutated gzip framing. */
#include "fuzz_util.h"

#include <zlib.h>

#include "metalearn/data.h"

static const char *put(const char *name, const uint8_t *d, size_t n, int gz) {
    if (!gz) return fuzz_write(name, d, n);
    const char *p = fuzz_path(name);
    gzFile f = gzopen(p, "wb1");
    if (!f || (n && gzwrite(f, d, (unsigned)n) != (int)n) || gzclose(f) != Z_OK) abort();
    return p;
}

static volatile uint8_t g_sink;

static const uint8_t *find(const uint8_t *d, size_t n, const char *s, size_t k) {
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(d + i, s, k)) return d + i;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    int gz = data[0] & 1;
    data++, size--;
    static const char sep[] = "\n--labels--\n";
    const uint8_t *cut = find(data, size, sep, sizeof sep - 1);
    char err[512];
    if (!cut) {
        const char *p = put(gz ? "one.gz" : "one", data, size, gz);
        int nd = 0;
        int64_t dims[3];
        uint8_t *px = NULL;
        if (ml_idx_read_u8(p, &nd, dims, &px, err, sizeof err) == ML_OK) {
            int64_t n = dims[0] * dims[1] * dims[2];
            for (int64_t i = 0; i < n; i += 4096) g_sink ^= px[i]; /* touch: the size is real */
            if (n) g_sink ^= px[n - 1];
        } else if (!err[0] || strchr(err, '\n')) {
            abort();
        }
        ml_free(px);
        return 0;
    }
    size_t n1 = (size_t)(cut - data);
    const char *pi = put(gz ? "images.gz" : "images", data, n1, gz);
    const char *pl = put(gz ? "labels.gz" : "labels", cut + sizeof sep - 1, size - n1 - (sizeof sep - 1), gz);
    ml_dataset d;
    if (ml_dataset_load_idx_files(pi, pl, 0, &d, err, sizeof err) == ML_OK) {
        int64_t counts[256] = {0};
        if (d.n_classes > 0 && d.n_classes <= 256) ml_dataset_class_counts(&d, counts);
        for (int64_t i = 0; i < d.n; i++)
            if (d.y[i] < 0 || d.y[i] >= d.n_classes) abort();
    } else if (!err[0] || strchr(err, '\n')) {
        abort();
    }
    ml_dataset_free(&d);
    return 0;
}
