/* file: descriptors and paths (reading a whole input, writing through a temporary name and a
 * rename), and the locale-independent number formatting and parsing the formats share. */
#define _POSIX_C_SOURCE 200809L

#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h> /* snprintf and rename only: no FILE* */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---- descriptors ---------------------------------------------------------------------------- */

bool gram__io_cancelled(gram_context *ctx, int64_t done, int64_t total)
{
    if (!ctx || !ctx->progress) return false;
    if (total <= 0 || done > total) done = total = 0; /* the callback's contract: done <= total */
    return ctx->progress(ctx->progress_user, done, total) != 0;
}

static gram_status cancelled(gram_context *ctx, const char *name, const char *what)
{
    return gram__fail(ctx, GRAM_ECANCELLED, "%s: cancelled while %s", name, what);
}

gram_status gram__io_open(gram_context *ctx, const char *name, const char *path, int flags, int *fd)
{
    for (;;) {
        *fd = open(path, flags | O_CLOEXEC, 0666);
        if (*fd >= 0) return GRAM_OK;
        if (errno != EINTR) return gram__io_fail_errno(ctx, name, "cannot open", errno);
        if (gram__io_cancelled(ctx, 0, 0)) return cancelled(ctx, name, "opening it");
    }
}

gram_status gram__io_read(gram_context *ctx, const char *name, int fd, void *buf, size_t n, int64_t done0,
                          int64_t total, size_t *got)
{
    unsigned char *p = buf;
    size_t done = 0;
    *got = 0;
    while (done < n) {
        /* Asked before each read too: a signal that arrived between two reads set the flag but
         * interrupted nothing, and the next read could block for good. */
        if (gram__io_cancelled(ctx, done0 + (int64_t)done, total)) return cancelled(ctx, name, "reading it");
        size_t want = n - done < GRAM__IO_STEP ? n - done : GRAM__IO_STEP;
        ssize_t r = read(fd, p + done, want);
        if (r < 0) {
            if (errno == EINTR) continue;
            *got = done;
            return gram__io_fail_errno(ctx, name, "cannot read", errno);
        }
        if (r == 0) break;
        done += (size_t)r;
        *got = done;
    }
    return GRAM_OK;
}

gram_status gram__io_write(gram_context *ctx, const char *name, int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        size_t want = n < GRAM__IO_STEP ? n : GRAM__IO_STEP;
        ssize_t w = write(fd, p, want);
        if (w < 0) {
            if (errno != EINTR) return gram__io_fail_errno(ctx, name, "cannot write", errno);
            if (gram__io_cancelled(ctx, 0, 0)) return cancelled(ctx, name, "writing it");
            continue;
        }
        if (w == 0) return gram__io_fail_errno(ctx, name, "cannot write", EIO);
        p += w;
        n -= (size_t)w;
    }
    return GRAM_OK;
}

gram_status gram__io_nul_error(gram_context *ctx, const char *name, size_t k)
{
    return gram__fail(ctx, GRAM_EFORMAT,
                      "%s: byte %zu is NUL: not CSV text (and not a .npy file: no \\x93NUMPY magic string)", name,
                      k + 1);
}

gram_status gram__io_fail_errno(gram_context *ctx, const char *name, const char *what, int err)
{
    char text[160];
#if defined(_GNU_SOURCE) && defined(__GLIBC__)
    const char *s = strerror_r(err, text, sizeof text); /* the GNU variant returns the text */
#else
    const char *s = text;
    if (strerror_r(err, text, sizeof text) != 0) snprintf(text, sizeof text, "error %d", err);
#endif
    return gram__fail(ctx, GRAM_EIO, "%s: %s: %s", name, what, s);
}

void gram__io_excerpt(char *dst, const char *src, size_t len)
{
    const size_t max = 40;
    size_t n = len < max ? len : max, k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > max) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = '\0';
}

/* ---- the C locale -------------------------------------------------------------------------- */

/* One locale object for the process, made on first use and never freed (it is a few bytes on
 * glibc, where "C" is even a static object). uselocale() switches only the calling thread, so a
 * caller's setlocale(LC_ALL, "de_DE.UTF-8") and other threads are unaffected. */
static locale_t c_locale = (locale_t)0;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_make(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

bool gram__c_locale_begin(gram__c_locale *s)
{
    s->active = false;
    s->saved = (locale_t)0;
    pthread_once(&c_locale_once, c_locale_make);
    if (c_locale == (locale_t)0) return false;
    s->saved = uselocale(c_locale);
    if (s->saved == (locale_t)0) return false;
    s->active = true;
    return true;
}

void gram__c_locale_end(gram__c_locale *s)
{
    if (s->active) uselocale(s->saved);
    s->active = false;
}

int gram__parse_double_c(const char *s, size_t len, double *out)
{
    if (!s || len == 0) return 0;
    /* strtod skips leading white space and stops at the first bad character; we want the whole
     * string to be the number, so neither may happen. */
    unsigned char c0 = (unsigned char)s[0];
    if (c0 == ' ' || (c0 >= '\t' && c0 <= '\r')) return 0;
    if (memchr(s, '\0', len)) return 0;
    char small[64], *buf = small;
    if (len >= sizeof small) {
        buf = gram__alloc(len + 1);
        if (!buf) return 0;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end = NULL;
    /* ERANGE is fine: overflow gives ±inf (the callers reject non-finite values with their
     * position) and underflow gives the correctly rounded subnormal or zero. */
    double v = strtod(buf, &end);
    int ok = end == buf + len;
    if (buf != small) gram__free(buf);
    if (ok) *out = v;
    return ok;
}

int gram__format_double_c(char *buf, size_t size, double v)
{
    if (isnan(v)) return snprintf(buf, size, "nan"); /* not "-nan", whatever the sign bit */
    if (isinf(v)) return snprintf(buf, size, v < 0 ? "-inf" : "inf");
    return snprintf(buf, size, "%.17g", v); /* 17 significant digits round-trip every double */
}

int gram__parse_double(const char *s, size_t len, double *out)
{
    gram__c_locale loc;
    if (!gram__c_locale_begin(&loc)) return 0;
    int ok = gram__parse_double_c(s, len, out);
    gram__c_locale_end(&loc);
    return ok;
}

int gram__format_double(char *buf, size_t size, double v)
{
    gram__c_locale loc;
    if (gram__c_locale_begin(&loc)) {
        int n = gram__format_double_c(buf, size, v);
        gram__c_locale_end(&loc);
        return n;
    }
    /* No locale object (out of memory): format in the global locale and put the '.' back. */
    int n = gram__format_double_c(buf, size, v);
    const char *dp = localeconv()->decimal_point;
    size_t dl = dp ? strlen(dp) : 0;
    if (n > 0 && buf && size > 0 && dl > 0 && strcmp(dp, ".") != 0) {
        char *hit = strstr(buf, dp);
        if (hit) {
            *hit = '.';
            memmove(hit + 1, hit + dl, strlen(hit + dl) + 1);
            n -= (int)(dl - 1);
        }
    }
    return n;
}

/* ---- reading -------------------------------------------------------------------------------- */

void gram__read_opts_init(gram__read_opts *o)
{
    if (!o) return;
    o->header = -1;
    o->delimiter = 0;
    o->max_bytes = 0;
}

int64_t gram__io_physical_memory(void)
{
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    int64_t mem;
    if (pages > 0 && page > 0 && gram__mul_i64(pages, page, &mem)) return mem;
#endif
    return INT64_MAX;
}

int64_t gram__io_default_limit(void)
{
    int64_t mem = gram__io_physical_memory();
    if (mem == INT64_MAX) return INT64_MAX;
    int64_t q = mem / 4;
    return q < ((int64_t)64 << 20) ? (int64_t)64 << 20 : q;
}

void gram__matrix_free(gram__matrix *m)
{
    if (!m) return;
    if (m->names) {
        for (int64_t j = 0; j < m->cols; j++) gram__free(m->names[j]);
        gram__free(m->names);
    }
    gram__free(m->data);
    m->data = NULL;
    m->names = NULL;
    m->rows = m->cols = 0;
}

static gram_status over_limit(gram_context *ctx, const char *name, int64_t max_bytes)
{
    return gram__fail(ctx, GRAM_EOVERFLOW, "%s: input is larger than the limit of %lld bytes", name, (long long)max_bytes);
}

gram_status gram__io_read_all(gram_context *ctx, const char *name, int fd, const unsigned char *head,
                              size_t head_len, int64_t total, int64_t max_bytes, bool text, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (text && head_len > 0) {
        const unsigned char *z = memchr(head, 0, head_len);
        if (z) return gram__io_nul_error(ctx, name, (size_t)(z - head));
    }
    size_t cap;
    if (total >= 0) {
        if ((uint64_t)total >= SIZE_MAX)
            return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld bytes do not fit in memory", name, (long long)total);
        cap = (size_t)total + 1; /* +1: the read that sees end of file needs room */
    } else {
        cap = (size_t)1 << 16;
    }
    /* Never room for more than one byte past the limit: that byte is what proves it exceeded. */
    if (max_bytes > 0 && (uint64_t)cap > (uint64_t)max_bytes + 1) cap = (size_t)max_bytes + 1;
    if (cap < head_len + 1) cap = head_len + 1;
    char *buf = gram__alloc(cap);
    if (!buf) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the text", name, cap);
    if (head_len) memcpy(buf, head, head_len);
    size_t n = head_len;
    gram_status st = GRAM_OK;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            if (max_bytes > 0 && (uint64_t)ncap > (uint64_t)max_bytes + 1) ncap = (size_t)max_bytes + 1;
            if (ncap <= cap) {
                st = gram__fail(ctx, GRAM_EOVERFLOW, "%s: input too large", name);
                break;
            }
            char *nb = gram__alloc(ncap);
            if (!nb) {
                st = gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the text", name, ncap);
                break;
            }
            memcpy(nb, buf, n);
            gram__free(buf);
            buf = nb;
            cap = ncap;
        }
        /* One step at a time, so a NUL or the limit is seen after one step, not after the whole. */
        size_t want = cap - n < GRAM__IO_STEP ? cap - n : GRAM__IO_STEP, got = 0;
        st = gram__io_read(ctx, name, fd, buf + n, want, (int64_t)n, total > 0 ? total : 0, &got);
        if (st) break;
        if (text && got > 0) {
            const char *z = memchr(buf + n, 0, got);
            if (z) {
                st = gram__io_nul_error(ctx, name, (size_t)(z - buf));
                break;
            }
        }
        n += got;
        if (max_bytes > 0 && (uint64_t)n > (uint64_t)max_bytes) {
            st = over_limit(ctx, name, max_bytes);
            break;
        }
        if (got < want) break; /* gram__io_read stops short only at end of input */
    }
    if (st) {
        gram__free(buf);
        return st;
    }
    *out = buf;
    *len = n;
    return GRAM_OK;
}

gram_status gram__read_matrix(gram_context *ctx, const char *path, const gram__read_opts *opts,
                              gram__matrix *out)
{
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "read: out must not be NULL");
    memset(out, 0, sizeof *out);
    if (!path) return gram__fail(ctx, GRAM_EINVAL, "read: path must not be NULL");
    gram__read_opts defaults;
    if (!opts) {
        gram__read_opts_init(&defaults);
        opts = &defaults;
    }
    if (opts->max_bytes < 0)
        return gram__fail(ctx, GRAM_EINVAL, "%s: max_bytes must be >= 0, got %lld", path, (long long)opts->max_bytes);

    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    int fd = 0;
    gram_status st = GRAM_OK;
    if (!is_stdin && (st = gram__io_open(ctx, name, path, O_RDONLY, &fd))) return st;

    struct stat sb;
    int64_t total = -1; /* bytes left to read, when the input is a regular file */
    if (fstat(fd, &sb) != 0) {
        st = gram__io_fail_errno(ctx, name, "cannot stat", errno);
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = gram__fail(ctx, GRAM_EIO, "%s: is a directory", name);
        goto done;
    }
    if (S_ISREG(sb.st_mode) && sb.st_size > 0) {
        off_t pos = lseek(fd, 0, SEEK_CUR); /* stdin redirected from a file may not be at 0 */
        if (pos >= 0 && pos <= sb.st_size) total = (int64_t)(sb.st_size - pos);
    }
    if (total >= 0 && opts->max_bytes > 0 && total > opts->max_bytes) {
        st = gram__fail(ctx, GRAM_EOVERFLOW, "%s: input is larger than the limit of %lld bytes (%lld bytes)", name,
                        (long long)opts->max_bytes, (long long)total);
        goto done;
    }

    unsigned char head[6];
    size_t got = 0;
    if ((st = gram__io_read(ctx, name, fd, head, sizeof head, 0, total, &got))) goto done;
    if (got == sizeof head && memcmp(head, "\x93NUMPY", 6) == 0) {
        st = gram__npy_read_fd(ctx, name, fd, head, got, total, opts->max_bytes, out);
    } else {
        char *text = NULL;
        size_t len = 0;
        st = gram__io_read_all(ctx, name, fd, head, got, total, opts->max_bytes, true, &text, &len);
        if (st == GRAM_OK) {
            st = gram__csv_parse(ctx, name, text, len, opts, out);
            gram__free(text);
        }
    }
done:
    if (!is_stdin) close(fd);
    return st;
}

/* ---- writing -------------------------------------------------------------------------------- */

enum { JOB_NPY, JOB_CSV, JOB_TEXT };

static gram_status run_job(gram_context *ctx, const char *name, int fd, const gram__output *o)
{
    switch (o->kind) {
    case JOB_NPY: return gram__npy_write_fd(ctx, name, fd, o->data, o->rows, o->cols);
    case JOB_CSV: return gram__csv_write_fd(ctx, name, fd, o->data, o->rows, o->cols, o->names);
    case JOB_TEXT: return gram__io_write(ctx, name, fd, o->text, o->len);
    }
    return gram__fail(ctx, GRAM_EINTERNAL, "%s: unknown write job", name);
}

/* Six characters for "PATH.tmp.XXXXXX". Not mkstemp(3): that creates the file with mode 0600,
 * and a renamed output should get the usual 0666 & ~umask, which open(2) applies by itself.
 * O_EXCL gives the same no-clobber guarantee. */
static void temp_suffix(char *s)
{
    static atomic_uint counter;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40) ^
                 ((uint64_t)atomic_fetch_add(&counter, 1u) * 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int i = 0; i < 6; i++) {
        s[i] = alphabet[z % 62];
        z /= 62;
    }
}

gram__format gram__output_format(const char *path)
{
    if (!path) return GRAM__FMT_UNKNOWN;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return GRAM__FMT_CSV; /* no suffix: "-", "/dev/stdout", ".hidden" */
    const char *suf = dot + 1;
    if (strlen(suf) == 3) {
        char low[4];
        for (int i = 0; i < 3; i++) low[i] = (char)(suf[i] >= 'A' && suf[i] <= 'Z' ? suf[i] + 32 : suf[i]);
        low[3] = '\0';
        if (!strcmp(low, "npy")) return GRAM__FMT_NPY;
        if (!strcmp(low, "csv")) return GRAM__FMT_CSV;
    }
    return GRAM__FMT_UNKNOWN;
}

/* The descriptor that "-", /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N name, or -1.
 * These are written to directly: opening them anew would start at offset 0 of a file the shell
 * opened for appending, and renaming over their target would leave the shell's descriptor on the
 * old file. */
static int named_descriptor(const char *path)
{
    if (!strcmp(path, "-") || !strcmp(path, "/dev/stdout")) return 1;
    if (!strcmp(path, "/dev/stderr")) return 2;
    const char *num = NULL;
    if (!strncmp(path, "/dev/fd/", 8)) num = path + 8;
    else if (!strncmp(path, "/proc/self/fd/", 14)) num = path + 14;
    if (!num || *num < '0' || *num > '9' || strlen(num) > 9) return -1;
    int fd = 0;
    for (const char *q = num; *q; q++) {
        if (*q < '0' || *q > '9') return -1;
        fd = fd * 10 + (*q - '0');
    }
    return fd;
}

/* path with its chain of symbolic links followed to the last name, which does not exist or is not a
 * link (malloc'd with gram__alloc into *out). Each link's text is relative to the link's directory.
 * Not realpath(3): that fails for a dangling link, whose target is exactly what is to be created. */
static gram_status follow_links(gram_context *ctx, const char *name, const char *path, char **out)
{
    size_t n = strlen(path);
    char *cur = gram__alloc(n + 1);
    if (!cur) return gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory", name);
    memcpy(cur, path, n + 1);
    for (int hops = 0;; hops++) {
        struct stat lsb;
        if (lstat(cur, &lsb) != 0 || !S_ISLNK(lsb.st_mode)) break;
        if (hops == 40) { /* Linux's own limit on links followed in one lookup */
            gram__free(cur);
            return gram__io_fail_errno(ctx, name, "cannot write", ELOOP);
        }
        size_t size = lsb.st_size > 0 ? (size_t)lsb.st_size + 1 : 4096;
        char *link = gram__alloc(size);
        ssize_t len = link ? readlink(cur, link, size) : -1;
        if (len < 0 || (size_t)len >= size) {
            int err = link ? (len < 0 ? errno : ENAMETOOLONG) : ENOMEM;
            gram__free(link);
            gram__free(cur);
            return gram__io_fail_errno(ctx, name, "cannot follow the symbolic link", err);
        }
        const char *slash = strrchr(cur, '/');
        size_t dir = link[0] != '/' && slash ? (size_t)(slash - cur) + 1 : 0;
        char *next = gram__alloc(dir + (size_t)len + 1);
        if (!next) {
            gram__free(link);
            gram__free(cur);
            return gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory", name);
        }
        memcpy(next, cur, dir);
        memcpy(next + dir, link, (size_t)len);
        next[dir + (size_t)len] = '\0';
        gram__free(link);
        gram__free(cur);
        cur = next;
    }
    *out = cur;
    return GRAM_OK;
}

static void output_init(gram__output *o, const char *path)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    o->fd = -1;
}

void gram__output_discard(gram__output *o)
{
    if (!o) return;
    if (o->fd >= 0 && o->close_fd) close(o->fd);
    if (o->tmp) unlink(o->tmp);
    gram__free(o->tmp);
    gram__free(o->target);
    o->fd = -1;
    o->close_fd = false;
    o->tmp = o->target = NULL;
}

/* The content is in o; this decides where it goes and, for a rename, writes the temporary file. */
static gram_status stage(gram_context *ctx, gram__output *o)
{
    const char *path = o->path, *name = strcmp(path, "-") ? path : "<stdout>";
    if (!*path) return gram__fail(ctx, GRAM_EINVAL, "write: path must not be empty");
    int nfd = named_descriptor(path);
    if (nfd >= 0) {
        int fl = fcntl(nfd, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
            return gram__io_fail_errno(ctx, name, "cannot write", fl < 0 ? errno : EBADF);
        o->fd = nfd;
        return GRAM_OK;
    }
    struct stat sb;
    gram_status st;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) return gram__fail(ctx, GRAM_EIO, "%s: is a directory", name);
        if (!S_ISREG(sb.st_mode)) {
            /* A device, FIFO or the like: written through, never replaced. No O_TRUNC (meaningless
             * for these, and a FIFO's reader expects only what is written). */
            if ((st = gram__io_open(ctx, name, path, O_WRONLY | O_NOCTTY, &o->fd))) return st;
            o->close_fd = true;
            return GRAM_OK;
        }
    } else if (errno != ENOENT) {
        return gram__io_fail_errno(ctx, name, "cannot write", errno);
    }
    if ((st = follow_links(ctx, name, path, &o->target))) return st;

    size_t n = strlen(o->target);
    o->tmp = gram__alloc(n + 16);
    if (!o->tmp) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate a temporary name", name);
    memcpy(o->tmp, o->target, n);
    memcpy(o->tmp + n, ".tmp.", 5);
    int fd = -1, err = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        temp_suffix(o->tmp + n + 5);
        o->tmp[n + 11] = '\0';
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        err = fd < 0 ? errno : 0;
        if (fd < 0 && err != EEXIST && err != EINTR) break;
    }
    if (fd < 0) {
        gram__free(o->tmp);
        o->tmp = NULL;
        return gram__io_fail_errno(ctx, name, "cannot create a temporary file next to it", err);
    }
    st = run_job(ctx, name, fd, o);
    /* close(2) can report a deferred write error (NFS, quotas); a failed close still releases
     * the descriptor, so it is never retried. */
    if (close(fd) != 0 && st == GRAM_OK) st = gram__io_fail_errno(ctx, name, "cannot write", errno);
    return st;
}

gram_status gram__output_commit(gram_context *ctx, gram__output *o)
{
    if (!o || (!o->tmp && o->fd < 0)) return gram__fail(ctx, GRAM_EINVAL, "write: nothing staged to commit");
    const char *name = strcmp(o->path, "-") ? o->path : "<stdout>";
    gram_status st = GRAM_OK;
    if (o->tmp) {
        if (rename(o->tmp, o->target) != 0) st = gram__io_fail_errno(ctx, name, "cannot rename the temporary file onto it", errno);
        else {
            gram__free(o->tmp);
            o->tmp = NULL;
        }
    } else {
        st = run_job(ctx, name, o->fd, o);
        if (o->close_fd && close(o->fd) != 0 && st == GRAM_OK) st = gram__io_fail_errno(ctx, name, "cannot write", errno);
        o->fd = -1;
        o->close_fd = false;
    }
    gram__output_discard(o);
    return st;
}

gram_status gram__output_stage_matrix(gram_context *ctx, gram__output *o, const char *path, const double *data,
                                      int64_t rows, int64_t cols, const char *const *names)
{
    if (!o) return gram__fail(ctx, GRAM_EINVAL, "write: output must not be NULL");
    output_init(o, path);
    if (!path) return gram__fail(ctx, GRAM_EINVAL, "write: path must not be NULL");
    if (rows < 0 || cols < 0)
        return gram__fail(ctx, GRAM_EINVAL, "%s: rows and cols must be >= 0, got %lld x %lld", path, (long long)rows,
                          (long long)cols);
    int64_t count;
    size_t bytes;
    if (!gram__mul_i64(rows, cols, &count) || !gram__bytes(count, sizeof(double), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld x %lld doubles overflow the address space", path,
                          (long long)rows, (long long)cols);
    if (count > 0 && !data) return gram__fail(ctx, GRAM_EINVAL, "%s: data must not be NULL", path);
    gram__format f = gram__output_format(path);
    if (f == GRAM__FMT_UNKNOWN)
        return gram__fail(ctx, GRAM_EINVAL, "%s: unknown output format: name it .npy or .csv (or give no suffix: CSV)",
                          path);
    o->kind = f == GRAM__FMT_NPY ? JOB_NPY : JOB_CSV;
    o->data = data;
    o->rows = rows;
    o->cols = cols;
    o->names = names;
    gram_status st = stage(ctx, o);
    if (st) gram__output_discard(o);
    return st;
}

gram_status gram__output_stage_text(gram_context *ctx, gram__output *o, const char *path, const char *text,
                                    size_t len)
{
    if (!o) return gram__fail(ctx, GRAM_EINVAL, "write: output must not be NULL");
    output_init(o, path);
    if (!path) return gram__fail(ctx, GRAM_EINVAL, "write: path must not be NULL");
    if (!text && len > 0) return gram__fail(ctx, GRAM_EINVAL, "%s: text must not be NULL", path);
    o->kind = JOB_TEXT;
    o->text = text;
    o->len = len;
    gram_status st = stage(ctx, o);
    if (st) gram__output_discard(o);
    return st;
}

gram_status gram__write_matrix(gram_context *ctx, const char *path, const double *data, int64_t rows,
                               int64_t cols, const char *const *names)
{
    gram__output o;
    gram_status st = gram__output_stage_matrix(ctx, &o, path, data, rows, cols, names);
    return st ? st : gram__output_commit(ctx, &o);
}

gram_status gram__write_text(gram_context *ctx, const char *path, const char *text, size_t len)
{
    gram__output o;
    gram_status st = gram__output_stage_text(ctx, &o, path, text, len);
    return st ? st : gram__output_commit(ctx, &o);
}
