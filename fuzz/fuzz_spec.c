/* libFuzzer target: the kernel spec parser (gram_kernel_parse) and what a parsed kernel promises
 * without an oracle.
 *
 * The input is the spec, copied into a buffer of exactly its size + 1 with a NUL at the end, so
 * ASan sees any read past the terminator; an input with an embedded NUL is a shorter spec (the
 * parser must stop at the first NUL). On success:
 *   - printing: gram_kernel_spec has snprintf semantics (length, truncation, NUL), and its text
 *     parses back to a kernel that prints identically (the canonical spec is a fixed point) and has
 *     the same dimension, sign, hyperparameters (bit for bit), names, bounds and fixed flags;
 *   - hyperparameters: n_hyper, get_hyper, get_bounds, hyper_name and hyper_fixed agree (a name
 *     for each index and none beyond; a fixed one has lower = upper = θ; lower ≤ upper);
 *     set_hyper with the kernel's own θ gives a kernel of the same structure whose θ is the one
 *     given to within rounding (exp(log v) may move v by an ulp) and whose spec round-trips;
 *     gram_kernel_copy gives the same spec and θ exactly;
 *   - composites made through the API (k + k, k * k, 0.5 * k, k^2) print a spec that parses back to
 *     the same text, as the parser's own composites do;
 *   - evaluation at a fixed small pair (gram_kernel_eval with and without the gradient, the
 *     symmetric and the cross case) and a tiny Gram block, kernel sum and log-sum through the
 *     engine (gram_kernel_matrix_grad, gram_kernel_sum, gram_kernel_logsum) on every microkernel
 *     table the build and CPU have: no crash, no undefined behaviour, no GRAM_EINTERNAL; the
 *     engine gives NaN only where the pair path does; for a non-negative kernel the engine's
 *     values agree with the pair path's where both are finite, and the log-sum is the log of the
 *     sum where either is a normal number (the NaN of a log-space sum with a zero-scaled term,
 *     issue 12, is this check).
 * A failure is GRAM_EPARSE (syntax), GRAM_EINVAL / GRAM_ESHAPE / GRAM_EDOMAIN / GRAM_EOVERFLOW (a
 * value outside its domain, ARD dimensions that disagree, ...) or GRAM_ENOMEM, with a message
 * "spec: position N: ...", and the same without a context. */
#include "fuzz_common.h"

#include <gram.h>

#include "kernel/kernel.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The largest ARD dimension evaluated; beyond it a kernel is only parsed and printed. */
#define EVAL_MAX_DIM 64

/* The canonical spec of k (malloc'd), checking gram_kernel_spec's snprintf contract on the way. */
static char *spec_of(const gram_kernel *k)
{
    size_t n = gram_kernel_spec(k, NULL, 0);
    FUZZ_ASSERT(n > 0 && n < ((size_t)1 << 31));
    char *s = malloc(n + 1);
    FUZZ_ASSERT(s != NULL);
    memset(s, 'x', n + 1);
    FUZZ_ASSERT(gram_kernel_spec(k, s, n + 1) == n);
    FUZZ_ASSERT(s[n] == '\0' && strlen(s) == n);
    char small[8];
    memset(small, 'x', sizeof small);
    FUZZ_ASSERT(gram_kernel_spec(k, small, sizeof small) == n);
    FUZZ_ASSERT(memchr(small, '\0', sizeof small) != NULL);
    FUZZ_ASSERT(strncmp(small, s, strlen(small)) == 0);
    return s;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Everything k says about its hyperparameters agrees with itself and with k2's. */
static void check_hyper(const gram_kernel *k, const gram_kernel *k2)
{
    int64_t P = gram_kernel_n_hyper(k);
    FUZZ_ASSERT(P >= 0 && P == gram_kernel_n_hyper(k2));
    FUZZ_ASSERT(gram_kernel_dim(k) == gram_kernel_dim(k2));
    FUZZ_ASSERT(gram_kernel_is_nonnegative(k) == gram_kernel_is_nonnegative(k2));
    FUZZ_ASSERT(gram_kernel_hyper_name(k, P) == NULL && gram_kernel_hyper_name(k, -1) == NULL);
    FUZZ_ASSERT(gram_kernel_hyper_fixed(k, P) == 0 && gram_kernel_hyper_fixed(k, -1) == 0);
    size_t m = (size_t)(P > 0 ? P : 1);
    double *t = malloc(m * sizeof *t), *t2 = malloc(m * sizeof *t2), *lo = malloc(m * sizeof *lo),
           *hi = malloc(m * sizeof *hi), *lo2 = malloc(m * sizeof *lo2), *hi2 = malloc(m * sizeof *hi2);
    FUZZ_ASSERT(t && t2 && lo && hi && lo2 && hi2);
    FUZZ_ASSERT(gram_kernel_get_hyper(k, t) == GRAM_OK && gram_kernel_get_hyper(k2, t2) == GRAM_OK);
    FUZZ_ASSERT(gram_kernel_get_bounds(k, lo, hi) == GRAM_OK && gram_kernel_get_bounds(k2, lo2, hi2) == GRAM_OK);
    for (int64_t i = 0; i < P; i++) {
        const char *name = gram_kernel_hyper_name(k, i), *name2 = gram_kernel_hyper_name(k2, i);
        FUZZ_ASSERT(name && name2 && name[0] && strcmp(name, name2) == 0);
        FUZZ_ASSERT(isfinite(t[i]) && same_bits(t[i], t2[i]));
        FUZZ_ASSERT(!isnan(lo[i]) && !isnan(hi[i]) && lo[i] <= hi[i]);
        FUZZ_ASSERT(same_bits(lo[i], lo2[i]) && same_bits(hi[i], hi2[i]));
        int fixed = gram_kernel_hyper_fixed(k, i);
        FUZZ_ASSERT(fixed == 0 || fixed == 1);
        FUZZ_ASSERT(fixed == gram_kernel_hyper_fixed(k2, i));
        if (fixed) FUZZ_ASSERT(lo[i] == t[i] && hi[i] == t[i]);
    }
    free(t);
    free(t2);
    free(lo);
    free(hi);
    free(lo2);
    free(hi2);
}

/* k3 = set_hyper(k, theta): the same structure, and θ back within rounding. */
static void check_set_hyper(const gram_kernel *k, const gram_kernel *k3, const double *theta)
{
    int64_t P = gram_kernel_n_hyper(k);
    FUZZ_ASSERT(P == gram_kernel_n_hyper(k3) && gram_kernel_dim(k) == gram_kernel_dim(k3));
    FUZZ_ASSERT(gram_kernel_is_nonnegative(k) == gram_kernel_is_nonnegative(k3));
    double *t3 = malloc((size_t)(P > 0 ? P : 1) * sizeof *t3);
    FUZZ_ASSERT(t3 && gram_kernel_get_hyper(k3, t3) == GRAM_OK);
    for (int64_t i = 0; i < P; i++) {
        FUZZ_ASSERT(strcmp(gram_kernel_hyper_name(k, i), gram_kernel_hyper_name(k3, i)) == 0);
        FUZZ_ASSERT(gram_kernel_hyper_fixed(k, i) == gram_kernel_hyper_fixed(k3, i));
        if (!(fabs(t3[i] - theta[i]) <= 4e-16 * fmax(1.0, fabs(theta[i]))))
            fprintf(stderr, "set_hyper: theta[%lld] %.17g came back as %.17g\n", (long long)i, theta[i], t3[i]);
        FUZZ_ASSERT(fabs(t3[i] - theta[i]) <= 4e-16 * fmax(1.0, fabs(theta[i])));
    }
    free(t3);
}

/* The spec of k parses back to a kernel with the same spec; returns that kernel's check. */
static void check_round_trip(const gram_kernel *k, const char *text)
{
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    gram_kernel *k2 = NULL;
    gram_status st = gram_kernel_parse(ctx, text, &k2);
    if (st != GRAM_OK) fprintf(stderr, "the canonical spec '%s' does not parse: %s\n", text, gram_context_message(ctx));
    FUZZ_ASSERT(st == GRAM_OK && k2 != NULL);
    char *text2 = spec_of(k2);
    if (strcmp(text, text2) != 0) fprintf(stderr, "round trip:\n  %s\n  %s\n", text, text2);
    FUZZ_ASSERT(strcmp(text, text2) == 0);
    check_hyper(k, k2);
    free(text2);
    gram_kernel_destroy(k2);
    gram_context_destroy(ctx);
}

/* A composite built through the API round-trips through its printed spec. Composites may be
 * refused (a non-integer power of a kernel that can be negative, an overflowing scale). */
static void check_composite(gram_status st, gram_kernel *c, gram_context *ctx)
{
    FUZZ_ASSERT(st != GRAM_EINTERNAL);
    if (st != GRAM_OK) {
        FUZZ_ASSERT(c == NULL && gram_context_message(ctx)[0] != '\0');
        return;
    }
    char *text = spec_of(c);
    check_round_trip(c, text);
    free(text);
    gram_kernel_destroy(c);
}

/* Fixed, unremarkable points: values of order 1, of both signs, not on any axis. */
static double point(int which, int64_t d) { return which ? 0.25 + 0.5 * (double)(d % 5) - 0.375 * (double)(d % 2) : -0.75 + 0.3 * (double)(d % 7); }

static int close_enough(double a, double b)
{
    if (a == b) return 1;
    double m = fmax(fabs(a), fabs(b));
    if (m < 1e-290) return 1; /* both in or near the subnormal range: kernels underflow differently */
    return fabs(a - b) <= 1e-9 * m;
}

/* The periodic family's value is ill-conditioned in r = ρ/p once r is large: the engine's tables
 * (scaled, centred coordinates, then the difference) and the pair path ((y - x)/p) round r
 * differently by an ulp of r, a phase difference of π·ulp(r) (3e-10 rad at r = 3e5, the data's
 * spread here being ~3). Each path gives the value of its own rounded r, sin(π r) with r reduced
 * exactly (gram__sincos_pi; before, sin(PI * r) lost the phase altogether: fuzz/corpus/spec/
 * periodic_phase*, test_overflow_dist), so the 1e-9 agreement is not asked of periodic leaves with
 * 1/p >= 1e5. Not a tolerance of a fault: it holds under FUZZ_STRICT too. */
static int periodic_phase(const gram_kernel *k)
{
    for (int i = 0; i < k->n_leaves; i++)
        if (k->leaves[i].family == GRAM_PERIODIC && k->leaves[i].inv_scale[0] >= 1e5) return 1;
    return 0;
}

/* The arc-cosine family takes a cosine within 8 eps of +-1 as +-1 (gram.h: (anti)parallel points
 * get theta = 0 or pi exactly). The engine's tables and the pair path compute the cosine from
 * different roundings of the dot product and the norms, so a pair right at that threshold may be
 * snapped on one path and not on the other: a difference of up to ~2e-8 in theta (degree 0: in
 * k/k(0) too), the conditioning of theta near 0 or pi, not a fault. Such kernels are held to
 * 1e-7 of max(1, |k|) instead of 1e-9 of |k|. */
static int arccos_angle(const gram_kernel *k)
{
    for (int i = 0; i < k->n_leaves; i++)
        if (k->leaves[i].family == GRAM_ARCCOS) return 1;
    return 0;
}

static void check_eval(const gram_kernel *k)
{
    int64_t dim = gram_kernel_dim(k), D = dim ? dim : 3;
    if (D > EVAL_MAX_DIM) return;
    int64_t P = gram_kernel_n_hyper(k);
    enum { M = 3, N = 2 };
    double X[N * EVAL_MAX_DIM], Y[M * EVAL_MAX_DIM];
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++) X[i * D + d] = point(0, d + 3 * i);
    for (int64_t i = 0; i < M; i++)
        for (int64_t d = 0; d < D; d++) Y[i * D + d] = point(1, d + 2 * i);
    Y[(M - 1) * D] = X[0]; /* a query at a data point, coordinate 0 only */

    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    FUZZ_ASSERT(gram_context_set_threads(ctx, 1) == GRAM_OK);
    int nonneg = gram_kernel_is_nonnegative(k);
    double *grad = malloc((size_t)(P > 0 ? P : 1) * M * N * sizeof *grad);
    double *g1 = malloc((size_t)(P > 0 ? P : 1) * sizeof *g1);
    FUZZ_ASSERT(grad && g1);

    /* Pairs: the scalar path. */
    double pair[M * N];
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double v = NAN;
            gram_status st = gram_kernel_eval(ctx, k, D, Y + i * D, X + j * D, 0, &v, g1);
            FUZZ_ASSERT(st != GRAM_EINTERNAL);
            pair[i * N + j] = st == GRAM_OK ? v : NAN;
            if (st == GRAM_OK && nonneg) FUZZ_ASSERT(!(v < 0));
        }
    double v = NAN;
    FUZZ_ASSERT(gram_kernel_eval(ctx, k, D, X, X, 1, &v, NULL) != GRAM_EINTERNAL);
    FUZZ_ASSERT(gram_kernel_eval(ctx, k, D + 1, X, X, 0, &v, NULL) != GRAM_EINTERNAL);

    /* The engine, on every microkernel table this build and CPU have: a Gram block with its
     * gradient, a symmetric block, a sum and a log-sum. */
    static const char *const archs[] = {"ref", "avx2", "avx512"};
    const int phase = periodic_phase(k), angle = arccos_angle(k);
    for (int a = 0; a < 3; a++) {
        if (gram_context_set_arch(ctx, archs[a]) != GRAM_OK) continue;
        gram_array Ya = gram_array_f64(Y, M, D), Xa = gram_array_f64(X, N, D);
        double K[M * N], Kxx[N * N], s[M], ls[M];
        gram_array Ka = gram_array_f64(K, M, N), Kxxa = gram_array_f64(Kxx, N, N);
        gram_array sa = gram_array_f64(s, M, 1), lsa = gram_array_f64(ls, M, 1);
        gram_status st = gram_kernel_matrix_grad(ctx, k, &Ya, &Xa, &Ka, grad);
        FUZZ_ASSERT(st != GRAM_EINTERNAL);
        int pair_nan = 0;
        for (int i = 0; i < M * N; i++) pair_nan |= isnan(pair[i]);
        if (st == GRAM_OK)
            for (int i = 0; i < M * N; i++) {
                /* NaN only where the scalar path has one (an overflow of terms of both signs) */
                if (isnan(K[i]) && !isnan(pair[i]))
                    fprintf(stderr, "%s: entry %d: engine NaN, pair %.17g\n", archs[a], i, pair[i]);
                FUZZ_ASSERT(!isnan(K[i]) || isnan(pair[i]));
                if (!nonneg || !isfinite(K[i]) || !isfinite(pair[i]) || phase) continue;
                if (angle) {
                    FUZZ_ASSERT(fabs(K[i] - pair[i]) <= 1e-7 * fmax(1.0, fmax(fabs(K[i]), fabs(pair[i]))));
                    continue;
                }
                if (!close_enough(K[i], pair[i]))
                    fprintf(stderr, "%s: entry %d: engine %.17g, pair %.17g\n", archs[a], i, K[i], pair[i]);
                FUZZ_ASSERT(close_enough(K[i], pair[i]));
            }
        FUZZ_ASSERT(gram_kernel_matrix(ctx, k, NULL, &Xa, &Kxxa) != GRAM_EINTERNAL);
        gram_status ss = gram_kernel_sum(ctx, k, &Ya, &Xa, NULL, &sa);
        FUZZ_ASSERT(ss != GRAM_EINTERNAL);
        /* the sum is NaN only where a pair is or where terms overflowed to +inf and -inf (no
         * value); the padding of the last panel, a copy of the last point with weight 0, adds
         * exactly 0 even where that point's value overflowed */
        if (ss == GRAM_OK && !pair_nan)
            for (int i = 0; i < M; i++) {
                if (fmax(pair[i * N], pair[i * N + 1]) == INFINITY && fmin(pair[i * N], pair[i * N + 1]) == -INFINITY)
                    continue;
                if (isnan(s[i])) fprintf(stderr, "%s: row %d: kernel sum NaN\n", archs[a], i);
                FUZZ_ASSERT(!isnan(s[i]));
            }
        gram_status sl = gram_kernel_logsum(ctx, k, &Ya, &Xa, NULL, &lsa);
        FUZZ_ASSERT(sl != GRAM_EINTERNAL);
        if (!nonneg) FUZZ_ASSERT(sl == GRAM_EDOMAIN);
        if (ss == GRAM_OK && sl == GRAM_OK)
            for (int i = 0; i < M; i++) {
                if (isnan(ls[i])) fprintf(stderr, "%s: row %d: log-sum NaN\n", archs[a], i);
                FUZZ_ASSERT(!isnan(ls[i]));
                /* compared where either side is a normal number (a sum of 0 beside a log-sum of -400
                 * is a loss, not an underflow) */
                if (!(isnormal(s[i]) && s[i] > 0 && s[i] < 1e300) && !(ls[i] > -700.0 && ls[i] < 690.0)) continue;
                if (!(fabs(ls[i] - log(s[i])) <= 1e-9 * fmax(1.0, fabs(ls[i]))))
                    fprintf(stderr, "%s: row %d: logsum %.17g, log(sum) %.17g\n", archs[a], i, ls[i], log(s[i]));
                FUZZ_ASSERT(fabs(ls[i] - log(s[i])) <= 1e-9 * fmax(1.0, fabs(ls[i])));
            }
    }
    free(grad);
    free(g1);
    gram_context_destroy(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0; /* longer specs only repeat what shorter ones reach, slowly */
    char *text = malloc(size + 1);
    FUZZ_ASSERT(text != NULL);
    if (size) memcpy(text, data, size);
    text[size] = '\0';

    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    gram_kernel *k = (gram_kernel *)(uintptr_t)1;
    gram_status st = gram_kernel_parse(ctx, text, &k);
    if (st != GRAM_OK && st != GRAM_ENOMEM && strncmp(gram_context_message(ctx), "spec: position ", 15) != 0)
        fprintf(stderr, "status %d, message without a position: %s\n", (int)st, gram_context_message(ctx));
    FUZZ_ASSERT(st == GRAM_OK || st == GRAM_EPARSE || st == GRAM_EINVAL || st == GRAM_ESHAPE || st == GRAM_EDOMAIN ||
                st == GRAM_EOVERFLOW || st == GRAM_ENOMEM);
    if (st != GRAM_OK) {
        FUZZ_ASSERT(k == NULL);
        FUZZ_ASSERT(st == GRAM_ENOMEM || strncmp(gram_context_message(ctx), "spec: position ", 15) == 0);
        gram_kernel *k0 = NULL;
        FUZZ_ASSERT(gram_kernel_parse(NULL, text, &k0) == st && k0 == NULL); /* no context: same answer */
        gram_context_destroy(ctx);
        free(text);
        return 0;
    }
    FUZZ_ASSERT(k != NULL);

    char *canon = spec_of(k);
    check_round_trip(k, canon);

    /* set_hyper with the kernel's own θ gives the same kernel up to the rounding of exp(log v) (a
 * value may move by an ulp, as in scikit-learn, whose theta setter does the same); copy gives the
 * same kernel exactly. */
    int64_t P = gram_kernel_n_hyper(k);
    double *theta = malloc((size_t)(P > 0 ? P : 1) * sizeof *theta);
    FUZZ_ASSERT(theta && gram_kernel_get_hyper(k, theta) == GRAM_OK);
    gram_kernel *k3 = NULL, *kc = NULL;
    st = gram_kernel_set_hyper(ctx, k, theta, &k3);
    if (st != GRAM_OK) {
        fprintf(stderr, "set_hyper of the kernel's own theta: %s\n", gram_context_message(ctx));
        FUZZ_ASSERT(st == GRAM_OK);
    }
    if (st == GRAM_OK) {
        char *t3 = spec_of(k3);
        check_round_trip(k3, t3);
        check_set_hyper(k, k3, theta);
        free(t3);
    }
    FUZZ_ASSERT(gram_kernel_copy(ctx, k, &kc) == GRAM_OK);
    char *tc = spec_of(kc);
    FUZZ_ASSERT(strcmp(tc, canon) == 0);
    check_hyper(k, kc);
    free(tc);
    free(theta);
    gram_kernel_destroy(k3);
    gram_kernel_destroy(kc);

    /* Composites through the API, kept small: each doubles the spec at most. */
    if (strlen(canon) < 1024) {
        for (int i = 0; i < 4; i++) {
            gram_kernel *c = NULL;
            gram_status cs = i == 0   ? gram_kernel_add(ctx, k, k, &c)
                             : i == 1 ? gram_kernel_mul(ctx, k, k, &c)
                             : i == 2 ? gram_kernel_scale(ctx, 0.5, k, &c)
                                      : gram_kernel_pow(ctx, k, 2.0, &c);
            check_composite(cs, c, ctx);
        }
    }

    check_eval(k);
    free(canon);
    gram_kernel_destroy(k);
    gram_context_destroy(ctx);
    free(text);
    return 0;
}
