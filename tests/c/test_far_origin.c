/* Data far from the origin relative to the lengthscale: Unix timestamps (~1.7e9 s) with a
 * lengthscale of a minute, and |x|/ℓ = 1e12. Scaling such coordinates before taking differences
 * loses the digits the differences need (relative errors of 2.6e-10 and 1e-5 before the engine
 * centred radial data); the references here take the differences of the given doubles exactly, in
 * long double. Also: dot-product kernels are not centred (x·y is not translation-invariant), the
 * bits do not depend on the thread count, and symmetric blocks stay exactly symmetric. */
#include "check.h"
#include "gram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;
#define PI_L 3.141592653589793238462643383279502884L
static gram_context *ctx;

static gram_kernel *P(const char *spec) { return check_kernel(ctx, spec); }

/* The radial families used here as functions of the scaled distance r (or ρ for periodic). */
typedef enum { GAUSS, MAT52, RQ, CAUCHY, PERIODIC, LAPL_L1 } fam;
static ld value(fam f, int D, const double *y, const double *x, ld l)
{
    ld t = 0, l1 = 0;
    for (int d = 0; d < D; d++) {
        ld q = ((ld)y[d] - (ld)x[d]) / l; /* exact difference of the given doubles */
        t += q * q;
        l1 += fabsl(q);
    }
    ld r = sqrtl(t), s5 = sqrtl(5.0L);
    switch (f) {
    case GAUSS: return expl(-t / 2);
    case MAT52: return (1 + s5 * r + 5 * t / 3) * expl(-s5 * r);
    case RQ: return powl(1 + t / (2 * 0.7L), -0.7L);
    case CAUCHY: return 1 / (1 + t);
    case PERIODIC: { /* period 3600·l/60, lengthscale 0.8: t is (ρ/p)² here */
        ld sn = sinl(PI_L * r);
        return expl(-2 * sn * sn / (0.8L * 0.8L));
    }
    case LAPL_L1: return expl(-l1);
    }
    return 0;
}

static const struct {
    const char *fmt; /* the spec, with %g for the lengthscale */
    fam f;
} FAMS[] = {{"gaussian(%.17g)", GAUSS},   {"matern52(%.17g)", MAT52}, {"rq(%.17g, alpha=0.7)", RQ},
            {"cauchy(%.17g)", CAUCHY},    {"laplacian_l1(%.17g)", LAPL_L1}};

/* Sums, log-sums and Gram blocks of data at offset `off` with spread `spread` in each of D
 * dimensions, lengthscale l; sums within tol of long double (gram.h's 1e-12 for sums). */
static void check_far(int D, const double *off, double spread, double l, double tol, double f32tol)
{
    enum { N = 400, M = 9 };
    check_rng r = {(uint64_t)(D * 1000 + spread)};
    double *X = malloc(sizeof(double) * N * D), *Y = malloc(sizeof(double) * M * D);
    float *Xf = malloc(sizeof(float) * N * D), *Yf = malloc(sizeof(float) * M * D);
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) X[i * D + d] = off[d] + spread * check_uniform(&r);
    for (int i = 0; i < M; i++)
        for (int d = 0; d < D; d++) Y[i * D + d] = off[d] + spread * check_uniform(&r);
    for (int i = 0; i < N * D; i++) Xf[i] = (float)X[i];
    for (int i = 0; i < M * D; i++) Yf[i] = (float)Y[i];
    double s[M], ls[M], *K = malloc(sizeof(double) * M * N);
    gram_array xa = gram_array_f64(X, N, D), ya = gram_array_f64(Y, M, D), sa = gram_array_f64(s, M, 1);
    gram_array la = gram_array_f64(ls, M, 1), ka = gram_array_f64(K, M, N);
    gram_array xf = gram_array_f32(Xf, N, D), yf = gram_array_f32(Yf, M, D);
    for (size_t fi = 0; fi < sizeof FAMS / sizeof *FAMS; fi++) {
        char spec[96];
        snprintf(spec, sizeof spec, FAMS[fi].fmt, l);
        gram_kernel *k = P(spec);
        if (!k) continue;
        for (int arch = 0; arch < 3; arch++) {
            if (gram_context_set_arch(ctx, arch == 0 ? "ref" : arch == 1 ? "avx2" : "avx512")) continue;
            CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &sa), GRAM_OK);
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &la), GRAM_OK);
            CHECK_STATUS(gram_kernel_matrix(ctx, k, &ya, &xa, &ka), GRAM_OK);
            double worst = 0;
            for (int i = 0; i < M; i++) {
                ld tot = 0;
                for (int j = 0; j < N; j++) {
                    ld v = value(FAMS[fi].f, D, Y + i * D, X + j * D, l);
                    tot += v;
                    double e = (double)(fabsl(K[i * N + j] - v) / (v + 1e-300L));
                    if (v > 1e-100L && e > worst) worst = e;
                }
                char what[200];
                snprintf(what, sizeof what, "%s %s D=%d offset %g spread %g: sum", spec,
                         arch == 0 ? "ref" : arch == 1 ? "avx2" : "avx512", D, off[0], spread);
                CHECK_CLOSE(s[i], tot, tol, 1e-300, what);
                CHECK_CLOSE(ls[i], logl(tot), 0, tol, what);
            }
            CHECK(worst <= 10 * tol, "%s: worst relative error of a Gram block value %g", spec, worst);
            /* float32 data: the differences of the given floats, then float32 arithmetic */
            CHECK_STATUS(gram_kernel_sum(ctx, k, &yf, &xf, NULL, &sa), GRAM_OK);
            for (int i = 0; i < M; i++) {
                double yd[8], xd[8];
                ld tot = 0;
                for (int j = 0; j < N; j++) {
                    for (int d = 0; d < D; d++) yd[d] = Yf[i * D + d], xd[d] = Xf[j * D + d];
                    tot += value(FAMS[fi].f, D, yd, xd, l);
                }
                CHECK_CLOSE(s[i], tot, f32tol, 1e-30, "float32 sum far from the origin");
            }
        }
        gram_context_set_arch(ctx, "auto");
        gram_kernel_destroy(k);
    }
    free(X), free(Y), free(Xf), free(Yf), free(K);
}

static void test_timestamps(void)
{
    /* one hour and one day of Unix timestamps, a lengthscale of 60 s */
    double t0[1] = {1.7e9};
    check_far(1, t0, 3600, 60, 1e-12, 2e-5);
    check_far(1, t0, 86400, 60, 1e-12, 1e-3);
    /* three dimensions at different offsets */
    double o3[3] = {1.7e9, -5e8, 0};
    check_far(3, o3, 3600, 60, 1e-12, 2e-5);
    /* |x|/ℓ = 1e12, with a lengthscale whose inverse is not a power of two (1/ℓ rounds) */
    double o1[2] = {7e11, -7e11};
    check_far(2, o1, 3.5, 0.7, 1e-12, 1e-4);
}

/* The periodic family is translation-invariant too (a function of |y - x| / period). */
static void test_periodic(void)
{
    enum { N = 300 };
    double X[N], y[1] = {1.7e9 + 1234.5}, out[1];
    check_rng r = {3};
    for (int i = 0; i < N; i++) X[i] = 1.7e9 + 7200 * check_uniform(&r);
    gram_kernel *k = P("periodic(lengthscale=0.8, period=3600)");
    if (!k) return;
    gram_array xa = gram_array_f64(X, N, 1), ya = gram_array_f64(y, 1, 1), oa = gram_array_f64(out, 1, 1);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &oa), GRAM_OK);
    ld tot = 0;
    for (int j = 0; j < N; j++) {
        double yy = y[0], xx = X[j];
        tot += value(PERIODIC, 1, &yy, &xx, 3600);
    }
    CHECK_CLOSE(out[0], tot, 1e-12, 0, "periodic far from the origin");
    gram_kernel_destroy(k);
}

/* Dot products are not translation-invariant: they must see the data as they are, also next to a
 * radial leaf with the same lengthscale (which used to share its packed copy). */
static void test_dot_not_centred(void)
{
    enum { N = 50 };
    double X[N * 2], y[2] = {1e3 + 0.5, -2e3 + 0.25}, out[1];
    check_rng r = {5};
    for (int i = 0; i < N; i++) X[2 * i] = 1e3 + check_normal(&r), X[2 * i + 1] = -2e3 + check_normal(&r);
    gram_kernel *k = P("linear(lengthscale=60) + gaussian(60) + poly(lengthscale=60, degree=2, coef0=0)");
    if (!k) return;
    gram_array xa = gram_array_f64(X, N, 2), ya = gram_array_f64(y, 1, 2), oa = gram_array_f64(out, 1, 1);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &oa), GRAM_OK);
    ld tot = 0;
    for (int j = 0; j < N; j++) {
        ld s = ((ld)y[0] * X[2 * j] + (ld)y[1] * X[2 * j + 1]) / 3600;
        tot += s + s * s + value(GAUSS, 2, y, X + 2 * j, 60);
    }
    CHECK_CLOSE(out[0], tot, 1e-13, 0, "dot products beside a radial leaf, far from the origin");
    gram_kernel_destroy(k);
}

/* The same bits for 1 and 3 threads; symmetric blocks exactly symmetric; gradients (which take
 * differences first) accurate too. */
static void test_threads_symmetry_gradient(void)
{
    enum { N = 700 };
    double *X = malloc(sizeof(double) * N), *K1 = malloc(sizeof(double) * N * N), *K3 = malloc(sizeof(double) * N * N);
    double s1[N], s3[N], l1[N], l3[N];
    check_rng r = {9};
    for (int i = 0; i < N; i++) X[i] = 1.7e9 + 3600 * check_uniform(&r);
    gram_kernel *k = P("2*matern32(60) + white(0.1) + rq(90, alpha=2)");
    if (!k) return;
    gram_array xa = gram_array_f64(X, N, 1);
    gram_array k1 = gram_array_f64(K1, N, N), k3 = gram_array_f64(K3, N, N);
    gram_array a1 = gram_array_f64(s1, N, 1), a3 = gram_array_f64(s3, N, 1);
    gram_array b1 = gram_array_f64(l1, N, 1), b3 = gram_array_f64(l3, N, 1);
    gram_context_set_threads(ctx, 1);
    CHECK_STATUS(gram_kernel_matrix(ctx, k, NULL, &xa, &k1), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(ctx, k, NULL, &xa, NULL, &a1), GRAM_OK);
    CHECK_STATUS(gram_kernel_logsum(ctx, k, NULL, &xa, NULL, &b1), GRAM_OK);
    gram_context_set_threads(ctx, 3);
    CHECK_STATUS(gram_kernel_matrix(ctx, k, NULL, &xa, &k3), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(ctx, k, NULL, &xa, NULL, &a3), GRAM_OK);
    CHECK_STATUS(gram_kernel_logsum(ctx, k, NULL, &xa, NULL, &b3), GRAM_OK);
    gram_context_set_threads(ctx, 0);
    CHECK(!memcmp(K1, K3, sizeof(double) * N * N), "Gram block: bits differ between 1 and 3 threads");
    CHECK(!memcmp(s1, s3, sizeof s1) && !memcmp(l1, l3, sizeof l1), "sums: bits differ between 1 and 3 threads");
    int sym = 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++) sym &= K1[i * N + j] == K1[j * N + i];
    CHECK(sym, "the symmetric block is not exactly symmetric");
    gram_kernel_destroy(k);

    /* the gradient of a gaussian, ∂k/∂log ℓ = k r², at timestamps */
    k = P("gaussian(60)");
    double G[64], Kg[64];
    gram_array x8 = gram_array_f64(X, 8, 1), kg = gram_array_f64(Kg, 8, 8);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &x8, &kg, G), GRAM_OK);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            ld q = ((ld)X[i] - X[j]) / 60, v = expl(-q * q / 2);
            /* exp(-q²/2) amplifies a relative error of its argument q²/2 times */
            CHECK_CLOSE(Kg[i * 8 + j], v, 1e-14 * (1 + q * q), 1e-300, "Gram block value at timestamps");
            CHECK_CLOSE(G[i * 8 + j], v * q * q, 1e-14 * (1 + q * q), 1e-300, "gradient at timestamps");
        }
    gram_kernel_destroy(k);
    free(X), free(K1), free(K3);
}

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    test_timestamps();
    test_periodic();
    test_dot_not_centred();
    test_threads_symmetry_gradient();
    gram_context_destroy(ctx);
    return check_done();
}
