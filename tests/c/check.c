#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long check_passed, check_failed;

void check_fail(const char *file, int line, const char *fmt, ...)
{
    check_failed++;
    if (check_failed > 50) return;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int check_done(void)
{
    printf("%ld passed, %ld failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

uint64_t check_u64(check_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double check_uniform(check_rng *r) { return (check_u64(r) >> 11) * 0x1.0p-53; }

double check_normal(check_rng *r)
{
    double u = check_uniform(r), v = check_uniform(r);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

int64_t check_int(check_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(check_u64(r) % (uint64_t)(hi - lo + 1));
}

char check_tmpdir[256];

const char *check_tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", check_tmpdir, name);
    return buf[k];
}

void check_put_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        CHECK(0, "cannot create %s: %s", path, strerror(errno));
        return;
    }
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) break;
        p += w, n -= (size_t)w;
    }
    close(fd);
}

gram_kernel *check_kernel(gram_context *ctx, const char *spec)
{
    gram_kernel *k = NULL;
    gram_status s = gram_kernel_parse(ctx, spec, &k);
    CHECK(s == GRAM_OK && k, "parse(\"%s\") failed: %d %s", spec, (int)s, gram_context_message(ctx));
    return s == GRAM_OK ? k : NULL;
}

char *check_spec_of(const gram_kernel *k)
{
    size_t n = gram_kernel_spec(k, NULL, 0);
    char *b = malloc(n + 1);
    if (b) gram_kernel_spec(k, b, n + 1);
    return b;
}

double *check_read_data(gram_context *ctx, const char *name, int64_t *rows, int64_t *cols)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "../../data/%s", name);
    gram__read_opts o;
    gram__read_opts_init(&o);
    gram__matrix m;
    gram_status s = gram__read_matrix(ctx, path, &o, &m);
    CHECK(s == GRAM_OK, "reading %s: %s", path, gram_context_message(ctx));
    if (s) return NULL;
    double *x = malloc(sizeof(double) * (size_t)(m.rows * m.cols));
    memcpy(x, m.data, sizeof(double) * (size_t)(m.rows * m.cols));
    *rows = m.rows, *cols = m.cols;
    gram__matrix_free(&m);
    return x;
}
