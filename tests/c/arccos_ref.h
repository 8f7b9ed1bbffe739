/* The arc-cosine kernel (Cho & Saul 2009) in long double, by a route independent of family.c's:
 * with φ = π - θ, J_0 = φ, and J_1, J_2 from their derivatives in φ, which are positive on
 * (0, π) and so integrate without cancellation where the closed forms cancel (near θ = π):
 *     dJ_1/dφ = φ sin φ,          J_1(0) = 0   (J_1 = sin φ - φ cos φ)
 *     dJ_2/dφ = 4 sin φ · J_1(φ), J_2(0) = 0   (J_2 = φ(1 + 2 cos² φ) - 3 sin φ cos φ)
 * each by 24-point Gauss–Legendre quadrature on [0, φ] (the integrands are entire: the error is
 * far below long double's precision for φ ≤ π). */
#ifndef GRAM_TEST_ARCCOS_REF_H
#define GRAM_TEST_ARCCOS_REF_H

#include <math.h>

#define ARCCOS_GL_N 24

/* Nodes and weights on [-1, 1], by Newton's method on the Legendre polynomial. */
static inline void arccos_gl(long double *x, long double *w)
{
    static long double X[ARCCOS_GL_N], W[ARCCOS_GL_N];
    static int done;
    if (!done) {
        const int n = ARCCOS_GL_N;
        for (int i = 0; i < n; i++) {
            long double z = cosl(3.14159265358979323846264338327950288L * (i + 0.75L) / (n + 0.5L)), dp = 1;
            for (int it = 0; it < 100; it++) {
                long double p0 = 1, p1 = z;
                for (int k = 2; k <= n; k++) {
                    long double p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
                    p0 = p1;
                    p1 = p2;
                }
                dp = n * (z * p1 - p0) / (z * z - 1);
                long double dz = p1 / dp;
                z -= dz;
                if (fabsl(dz) < 1e-21L) break;
            }
            X[i] = z;
            W[i] = 2 / ((1 - z * z) * dp * dp);
        }
        done = 1;
    }
    for (int i = 0; i < ARCCOS_GL_N; i++) x[i] = X[i], w[i] = W[i];
}

static inline long double arccos_j1_ld(long double phi)
{
    long double x[ARCCOS_GL_N], w[ARCCOS_GL_N], s = 0;
    arccos_gl(x, w);
    for (int i = 0; i < ARCCOS_GL_N; i++) {
        long double t = phi * (x[i] + 1) / 2;
        s += w[i] * t * sinl(t);
    }
    return s * phi / 2;
}

static inline long double arccos_j2_ld(long double phi)
{
    long double x[ARCCOS_GL_N], w[ARCCOS_GL_N], s = 0;
    arccos_gl(x, w);
    for (int i = 0; i < ARCCOS_GL_N; i++) {
        long double t = phi * (x[i] + 1) / 2;
        s += w[i] * 4 * sinl(t) * arccos_j1_ld(t);
    }
    return s * phi / 2;
}

/* J_m(θ) for any m ≥ 0 from Cho & Saul's integral k_m = 2·E[Θ(w·x)Θ(w·y)(w·x)^m (w·y)^m]: in
 * polar coordinates of the plane of x and y (w·x̂ = r cos β, w·ŷ = r cos(β - θ)), the radial part
 * is 2^m m!/(2π) and the angular one runs over β ∈ (θ - π/2, π/2), so with k_m = |x|^m|y|^m J_m/π,
 * J_m = 2^m m! ∫ cos^m β cos^m(β - θ) dβ (m = 0: π - θ). Used for J_4, which the variance of the
 * degree-2 features needs. */
static inline long double arccos_ref_J(int m, long double theta)
{
    const long double PI = 3.14159265358979323846264338327950288L;
    long double x[ARCCOS_GL_N], w[ARCCOS_GL_N], s = 0, a = theta - PI / 2, b = PI / 2, f = 1;
    arccos_gl(x, w);
    for (int i = 0; i < ARCCOS_GL_N; i++) {
        long double be = a + (b - a) * (x[i] + 1) / 2;
        s += w[i] * powl(cosl(be) * cosl(be - theta), m);
    }
    for (int k = 1; k <= m; k++) f *= 2 * k;
    return f * s * (b - a) / 2;
}

/* k_n from s = x·y, xx = |x|², yy = |y|² (already scaled by the lengthscales); a zero vector
 * gives gram.h's convention (1/2 for n = 0, else 0). */
static inline long double arccos_ref_value(int n, long double s, long double xx, long double yy)
{
    if (xx <= 0 || yy <= 0) return n == 0 ? 0.5L : 0;
    long double c = s / sqrtl(xx * yy);
    if (c > 1) c = 1;
    if (c < -1) c = -1;
    long double phi = acosl(-c), J = n == 0 ? phi : n == 1 ? arccos_j1_ld(phi) : arccos_j2_ld(phi);
    long double m = n == 0 ? 1 : n == 1 ? sqrtl(xx * yy) : xx * yy;
    return m * J / 3.14159265358979323846264338327950288L;
}

#endif
