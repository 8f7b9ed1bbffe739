/* A tiny test harness: CHECK records a failure with file:line and goes on; check_done() prints
 * "N passed, N failed" and gives main's exit code. */
#ifndef GRAM_CHECK_H
#define GRAM_CHECK_H

#include "gram.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern long check_passed, check_failed;

void check_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) check_passed++;                                                                  \
        else check_fail(__FILE__, __LINE__, __VA_ARGS__);                                          \
    } while (0)

/* |a - b| ≤ rtol·|b| + atol */
#define CHECK_CLOSE(a, b, rtol, atol, what)                                                        \
    do {                                                                                           \
        long double a_ = (a), b_ = (b);                                                            \
        long double d_ = a_ > b_ ? a_ - b_ : b_ - a_;                                              \
        long double m_ = b_ < 0 ? -b_ : b_;                                                        \
        CHECK(d_ <= (rtol) * m_ + (atol) || (a_ == b_), "%s: got %.17Lg, want %.17Lg (rel err %.3Lg)", \
              what, a_, b_, m_ > 0 ? d_ / m_ : d_);                                                \
    } while (0)

#define CHECK_STATUS(expr, want)                                                                   \
    do {                                                                                           \
        int got_ = (int)(expr);                                                                    \
        CHECK(got_ == (int)(want), "%s returned %d, want %d (%s)", #expr, got_, (int)(want), #want); \
    } while (0)

int check_done(void);

/* A kernel from a spec; a parse failure is recorded (with the library's message) and gives NULL. */
gram_kernel *check_kernel(gram_context *ctx, const char *spec);
/* A kernel's canonical spec, malloc'd (the caller frees it). */
char *check_spec_of(const gram_kernel *k);

/* Deterministic random numbers for tests (splitmix64). */
typedef struct { uint64_t s; } check_rng;
uint64_t check_u64(check_rng *r);
double check_uniform(check_rng *r);          /* [0, 1) */
double check_normal(check_rng *r);           /* N(0, 1) */
int64_t check_int(check_rng *r, int64_t lo, int64_t hi); /* [lo, hi] */

/* Scratch files for the file tests: a directory the test creates (mkdtemp into check_tmpdir),
 * paths inside it (check_tpath: one of 4 rotating buffers), and writing bytes to a path. */
extern char check_tmpdir[256];
const char *check_tpath(const char *name);
void check_put_file(const char *path, const void *data, size_t n);

/* A CSV of the repository's data/ (found from this file's directory) as row-major float64, malloc'd
 * (the caller frees it); a read failure is recorded (with the library's message) and gives NULL. */
double *check_read_data(gram_context *ctx, const char *name, int64_t *rows, int64_t *cols);

#endif
