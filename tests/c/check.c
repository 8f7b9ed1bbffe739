#include "check.h"

#include <math.h>
#include <stdarg.h>

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
