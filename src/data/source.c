/* source.c: a zip archive (libzip, read in place) or a folder, seen the same
 * way: a name-sorted list of entries that can be read whole into memory.
 *
 * Not here: what the entries mean (omniglot.c, lake.c). Sorting makes every
 * reader independent of the archive's or the filesystem's order. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "images_internal.h"

#define ML__SRC_MAX_DEPTH 16

int ml__has_png_suffix(const char *name) {
    size_t n = strlen(name);
    if (n < 4) return 0;
    const char *s = name + n - 4;
    return s[0] == '.' && (s[1] | 32) == 'p' && (s[2] | 32) == 'n' && (s[3] | 32) == 'g';
}

/* Names nobody means as data: dot files and the resource forks macOS adds
 * to zips. Checked on every path component. */
static int skipped_name(const char *name) {
    const char *p = name;
    while (*p) {
        if (*p == '.' || strncmp(p, "__MACOSX", 8) == 0) return 1;
        const char *slash = strchr(p, '/');
        if (!slash) break;
        p = slash + 1;
    }
    return 0;
}

static ml_status add_entry(ml__src *s, int *cap, const char *name, size_t name_len, uint64_t size,
                           int64_t zindex, int is_dir) {
    if (s->n == *cap) {
        int nc = *cap ? 2 * *cap : 256;
        ml__src_entry *e = ml_malloc(sizeof *e * (size_t)nc);
        if (!e) return ML_ERR_NOMEM;
        if (s->n) memcpy(e, s->e, sizeof *e * (size_t)s->n);
        ml_free(s->e);
        s->e = e;
        *cap = nc;
    }
    if (s->pool_len + name_len + 1 > s->pool_cap) {
        size_t nc = s->pool_cap ? 2 * s->pool_cap : 16384;
        while (nc < s->pool_len + name_len + 1) nc *= 2;
        char *p = ml_malloc(nc);
        if (!p) return ML_ERR_NOMEM;
        if (s->pool_len) memcpy(p, s->pool, s->pool_len);
        ml_free(s->pool);
        s->pool = p;
        s->pool_cap = nc;
    }
    ml__src_entry *e = &s->e[s->n++];
    e->name = NULL;
    e->name_off = s->pool_len;
    e->size = size;
    e->zindex = zindex;
    e->is_dir = is_dir;
    memcpy(s->pool + s->pool_len, name, name_len);
    s->pool[s->pool_len + name_len] = 0;
    s->pool_len += name_len + 1;
    return ML_OK;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const ml__src_entry *)a)->name, ((const ml__src_entry *)b)->name);
}

/* ---- zip ------------------------------------------------------------------------ */

/* Archives up to this size are read into memory whole: libzip then serves
 * every entry without the stat and seek it makes per entry on a file
 * (a third of the load time for Omniglot's small PNGs). */
#define ML__ZIP_IN_MEMORY_MAX ((uint64_t)1 << 30)

static ml_status open_zip(ml__src *s, uint64_t file_size, int *cap, char *err, size_t errlen) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_t *z = NULL;
    if (file_size <= ML__ZIP_IN_MEMORY_MAX) {
        FILE *f = fopen(s->path, "rb");
        if (!f) {
            ml__errf(err, errlen, "%s: %s", s->path, strerror(errno));
            zip_error_fini(&ze);
            return ML_ERR_IO;
        }
        s->data = ml_malloc(file_size ? (size_t)file_size : 1);
        size_t got = s->data ? fread(s->data, 1, (size_t)file_size, f) : 0;
        int bad = ferror(f);
        fclose(f);
        if (!s->data || bad || got != file_size) {
            ml__errf(err, errlen, "%s: %s", s->path, !s->data ? "out of memory" : "read error");
            zip_error_fini(&ze);
            return !s->data ? ML_ERR_NOMEM : ML_ERR_IO;
        }
        zip_source_t *zs = zip_source_buffer_create(s->data, (zip_uint64_t)file_size, 0, &ze);
        if (zs) {
            z = zip_open_from_source(zs, ZIP_RDONLY, &ze);
            if (!z) zip_source_free(zs);
        }
    } else {
        int code = 0;
        z = zip_open(s->path, ZIP_RDONLY, &code);
        if (!z) zip_error_set(&ze, code, 0);
    }
    if (!z) {
        int code = zip_error_code_zip(&ze);
        ml__errf(err, errlen, "%s: cannot open as zip: %s%s", s->path, zip_error_strerror(&ze),
                    code == ZIP_ER_NOZIP || code == ZIP_ER_INCONS ? " (truncated or not a zip?)" : "");
        zip_error_fini(&ze);
        return code == ZIP_ER_MEMORY ? ML_ERR_NOMEM : ML_ERR_FORMAT;
    }
    zip_error_fini(&ze);
    s->zip = z;
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t st;
        if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME)) {
            ml__errf(err, errlen, "%s: entry %lld: %s", s->path, (long long)i,
                        zip_strerror(z));
            return ML_ERR_FORMAT;
        }
        if (skipped_name(st.name)) continue;
        size_t len = strlen(st.name);
        int is_dir = len > 0 && st.name[len - 1] == '/';
        ml_status r = add_entry(s, cap, st.name, len, (st.valid & ZIP_STAT_SIZE) ? st.size : 0, i, is_dir);
        if (r != ML_OK) {
            ml__errf(err, errlen, "%s: out of memory listing entries", s->path);
            return r;
        }
    }
    return ML_OK;
}

/* ---- folder ------------------------------------------------------------------------ */

/* Walks root/rel recursively; rel is "" or ends in '/'. */
static ml_status walk(ml__src *s, int *cap, char *path, size_t root_len, size_t len, int depth,
                      char *err, size_t errlen) {
    if (depth > ML__SRC_MAX_DEPTH) {
        ml__errf(err, errlen, "%s: folders nested deeper than %d levels", path, ML__SRC_MAX_DEPTH);
        return ML_ERR_FORMAT;
    }
    path[len] = 0;
    DIR *d = opendir(path);
    if (!d) {
        ml__errf(err, errlen, "%s: cannot open folder: %s", path, strerror(errno));
        return ML_ERR_IO;
    }
    ml_status r = ML_OK;
    struct dirent *de;
    while (r == ML_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "__MACOSX") == 0) continue;
        size_t nl = strlen(de->d_name);
        if (len + nl + 2 >= 4096) {
            ml__errf(err, errlen, "%s%s: path too long", path, de->d_name);
            r = ML_ERR_ARG;
            break;
        }
        memcpy(path + len, de->d_name, nl + 1);
        struct stat stt;
        if (stat(path, &stt) != 0) {
            ml__errf(err, errlen, "%s: %s", path, strerror(errno));
            r = ML_ERR_IO;
            break;
        }
        if (S_ISDIR(stt.st_mode)) {
            path[len + nl] = '/';
            path[len + nl + 1] = 0;
            r = add_entry(s, cap, path + root_len, len + nl + 1 - root_len, 0, -1, 1);
            if (r == ML_OK) r = walk(s, cap, path, root_len, len + nl + 1, depth + 1, err, errlen);
            else ml__errf(err, errlen, "%s: out of memory listing files", s->path);
        } else if (S_ISREG(stt.st_mode)) {
            r = add_entry(s, cap, path + root_len, len + nl - root_len, (uint64_t)stt.st_size, -1, 0);
            if (r != ML_OK) ml__errf(err, errlen, "%s: out of memory listing files", s->path);
        }
        path[len] = 0;
    }
    closedir(d);
    return r;
}

/* ---- public (internal) API --------------------------------------------------------- */

void ml__src_close(ml__src *s) {
    if (!s) return;
    if (s->zip) zip_discard((zip_t *)s->zip); /* before data: the archive reads from it */
    ml_free(s->data);
    ml_free(s->path);
    ml_free(s->e);
    ml_free(s->pool);
    memset(s, 0, sizeof *s);
}

ml_status ml__src_open(ml__src *s, const char *path, const ml_image_options *opt, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if (!path || !*path) {
        ml__errf(err, errlen, "(empty path): no such file or folder");
        return ML_ERR_ARG;
    }
    ml_status lr = ml_image_limits(opt, &s->max_bytes, &s->max_pixels, err, errlen);
    if (lr != ML_OK) return lr;
    size_t pl = strlen(path);
    s->path = ml_malloc(pl + 1);
    if (!s->path) return ML_ERR_NOMEM;
    memcpy(s->path, path, pl + 1);
    struct stat stt;
    if (stat(path, &stt) != 0) {
        ml__errf(err, errlen, "%s: %s", path, strerror(errno));
        ml__src_close(s);
        return ML_ERR_IO;
    }
    int cap = 0;
    ml_status r;
    if (S_ISDIR(stt.st_mode)) {
        if (pl + 2 >= 4096) {
            ml__errf(err, errlen, "%s: path too long", path);
            ml__src_close(s);
            return ML_ERR_ARG;
        }
        char *buf = ml_malloc(4096);
        if (!buf) {
            ml__src_close(s);
            return ML_ERR_NOMEM;
        }
        memcpy(buf, path, pl + 1);
        size_t len = pl;
        if (buf[len - 1] != '/') buf[len++] = '/';
        r = walk(s, &cap, buf, len, len, 0, err, errlen);
        ml_free(buf);
    } else {
        r = open_zip(s, (uint64_t)stt.st_size, &cap, err, errlen);
    }
    if (r != ML_OK) {
        ml__src_close(s);
        return r;
    }
    for (int i = 0; i < s->n; i++) s->e[i].name = s->pool + s->e[i].name_off;
    if (s->n > 1) qsort(s->e, (size_t)s->n, sizeof *s->e, cmp_entry);
    return ML_OK;
}

ml_status ml__src_read(const ml__src *s, int i, uint8_t **buf, size_t *cap, size_t *len,
                       char *err, size_t errlen) {
    const ml__src_entry *e = &s->e[i];
    *len = 0;
    /* The declared size, before anything is inflated: a small zip can hold
     * a gigabyte of zeros. Reading stops one byte past it, so a lie is caught. */
    uint64_t limit = s->max_bytes ? s->max_bytes : ML_IMAGE_DEFAULT_MAX_BYTES;
    if (e->size > limit || e->size >= SIZE_MAX) {
        ml__errf(err, errlen, "%s: %s: %llu bytes, more than the limit of %llu (raise it with ML_MAX_IMAGE_BYTES)",
                 s->path, e->name, (unsigned long long)e->size, (unsigned long long)limit);
        return ML_ERR_FORMAT;
    }
    size_t need = (size_t)e->size + 1; /* +1 so a file that grew is noticed */
    if (*cap < need || !*buf) {
        ml_free(*buf);
        *buf = ml_malloc(need);
        *cap = *buf ? need : 0;
        if (!*buf) {
            ml__errf(err, errlen, "%s: %s: out of memory", s->path, e->name);
            return ML_ERR_NOMEM;
        }
    }
    if (s->zip) {
        zip_t *z = (zip_t *)s->zip;
        zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)e->zindex, 0);
        if (!f) {
            ml__errf(err, errlen, "%s: %s: %s", s->path, e->name, zip_strerror(z));
            return ML_ERR_FORMAT;
        }
        /* Reading on to the end is what makes libzip check the entry's CRC. */
        zip_int64_t got = 0, k;
        while ((k = zip_fread(f, *buf + got, (zip_uint64_t)(need - (size_t)got))) > 0) {
            got += k;
            if ((size_t)got >= need) break;
        }
        if (k < 0) {
            ml__errf(err, errlen, "%s: %s: %s", s->path, e->name, zip_file_strerror(f));
            zip_fclose(f);
            return ML_ERR_FORMAT;
        }
        zip_fclose(f);
        if ((uint64_t)got != e->size) {
            ml__errf(err, errlen, "%s: %s: entry holds %lld bytes, directory says %llu", s->path,
                        e->name, (long long)got, (unsigned long long)e->size);
            return ML_ERR_FORMAT;
        }
    } else {
        size_t pl = strlen(s->path), nl = strlen(e->name);
        char *full = ml_malloc(pl + nl + 2);
        if (!full) return ML_ERR_NOMEM;
        memcpy(full, s->path, pl);
        size_t o = pl;
        if (pl && s->path[pl - 1] != '/') full[o++] = '/';
        memcpy(full + o, e->name, nl + 1);
        FILE *f = fopen(full, "rb");
        if (!f) {
            ml__errf(err, errlen, "%s: %s", full, strerror(errno));
            ml_free(full);
            return ML_ERR_IO;
        }
        size_t got = fread(*buf, 1, need, f);
        int bad = ferror(f);
        fclose(f);
        if (bad || got != e->size) {
            ml__errf(err, errlen, "%s: %s", full, bad ? "read error" : "file changed while reading");
            ml_free(full);
            return ML_ERR_IO;
        }
        ml_free(full);
    }
    *len = (size_t)e->size;
    return ML_OK;
}

int ml__src_next_empty_dir(const ml__src *s, int from) {
    for (int i = from < 0 ? 0 : from; i < s->n; i++) {
        if (!s->e[i].is_dir) continue;
        size_t l = strlen(s->e[i].name);
        /* Sorted by name, so anything inside the directory comes right after it. */
        if (i + 1 >= s->n || strncmp(s->e[i + 1].name, s->e[i].name, l) != 0) return i;
    }
    return -1;
}
