/* fuzz_safetensors.c: ml_safetensors_read on arbitrary bytes (a checkpoint or
 * an --init file), then every entry looked up and read, so a reader that
 * accepts a file must also have laid it out consistently. */
#include "fuzz_util.h"

#include "metalearn/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = fuzz_write("in.safetensors", data, size);
    ml_safetensors s;
    char err[512];
    if (ml_safetensors_read(p, &s, err, sizeof err) != ML_OK) {
        if (!err[0] || strchr(err, '\n')) abort(); /* one line, always */
        return 0;
    }
    double sum = 0;
    for (int i = 0; i < s.n; i++) {
        const ml_st_entry *e = ml_safetensors_find(&s, s.entries[i].name);
        if (!e) abort();
        for (int64_t k = 0; k < e->numel; k++) sum += e->data[k];
    }
    for (int i = 0; i < s.n_meta; i++)
        if (!ml_safetensors_meta(&s, s.meta_keys[i])) abort();
    ml_safetensors_free(&s);
    return sum == 12345.678; /* keeps the loop; libFuzzer ignores the value */
}
