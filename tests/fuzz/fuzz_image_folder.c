/* fuzz_image_folder.c: folders of PNGs (`--dataset folder:DIR`, predict's
 * --support/--query, Omniglot unpacked). The input is a zip used only as a
 * container: its entries are written into a fresh folder (at most 64 files,
 * names kept to [A-Za-z0-9._/-] without "..", 1 MiB each), which is then
 * loaded by ml_image_folder_load and by ml_omniglot_load. */
#include "fuzz_util.h"

#include <zip.h>

#include "metalearn/images.h"

/* Writes the zip's entries under dir; returns how many files were written. */
static int unpack(const uint8_t *data, size_t size, const char *dir) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, size, 0, &ze);
    zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY, &ze) : NULL;
    if (!z) {
        if (src) zip_source_free(src);
        zip_error_fini(&ze);
        return 0;
    }
    zip_error_fini(&ze);
    int written = 0;
    static uint8_t buf[1 << 20];
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n && written < 64; i++) {
        const char *name = zip_get_name(z, (zip_uint64_t)i, 0);
        if (!name || !*name || name[0] == '/' || strstr(name, "..") || strlen(name) > 200) continue;
        int ok = 1;
        for (const char *c = name; *c; c++)
            ok &= (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
                  *c == '_' || *c == '-' || *c == '/';
        if (!ok || strstr(name, "//")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        for (char *c = path + strlen(dir) + 1; *c; c++) /* parent folders */
            if (*c == '/') {
                *c = 0;
                mkdir(path, 0755);
                *c = '/';
            }
        size_t len = strlen(path);
        if (path[len - 1] == '/') {
            mkdir(path, 0755);
            continue;
        }
        zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)i, 0);
        if (!f) continue;
        zip_int64_t got = zip_fread(f, buf, sizeof buf);
        zip_fclose(f);
        if (got < 0) continue;
        FILE *o = fopen(path, "wb");
        if (!o) continue;
        fwrite(buf, 1, (size_t)got, o);
        fclose(o);
        written++;
    }
    zip_discard(z);
    return written;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *dir = fuzz_path("folder");
    fuzz_rm_rf(dir);
    mkdir(dir, 0755);
    if (!unpack(data, size, dir)) return 0;
    ml_image_options opt = {.size = 8, .max_bytes = 1u << 20, .max_pixels = 1 << 20};
    ml_image_set s;
    char err[512];
    if (ml_image_folder_load(dir, &opt, &s, err, sizeof err) == ML_OK) {
        if (s.n_classes < 1 || s.class_start[s.n_classes] != s.n) abort();
        ml_image_set_free(&s);
    } else if (!err[0] || strchr(err, '\n')) {
        abort();
    }
    const char *one[1] = {dir};
    if (ml_omniglot_load(one, 1, &opt, &s, err, sizeof err) == ML_OK) ml_image_set_free(&s);
    else if (!err[0] || strchr(err, '\n')) abort();
    return 0;
}
