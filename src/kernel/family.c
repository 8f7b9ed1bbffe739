/* The families' scalar functions: value and log-value from the per-pair statistic. These are the
 * definitions every other path (the SIMD microkernels, gradients, diagonals) must agree with. */
#include "kernel.h"

#include <float.h>
#include <math.h>

#define SQRT3 1.7320508075688772935
#define SQRT5 2.2360679774997896964
#define PI 3.14159265358979323846

static const struct {
    const char *name;
    gram_structure structure;
} FAMILY[GRAM_FAMILY_COUNT] = {
    [GRAM_GAUSSIAN] = {"gaussian", GRAM_STRUCT_SQDIST},
    [GRAM_LAPLACIAN] = {"laplacian", GRAM_STRUCT_SQDIST},
    [GRAM_MATERN12] = {"matern12", GRAM_STRUCT_SQDIST},
    [GRAM_MATERN32] = {"matern32", GRAM_STRUCT_SQDIST},
    [GRAM_MATERN52] = {"matern52", GRAM_STRUCT_SQDIST},
    [GRAM_RATIONAL_QUADRATIC] = {"rational_quadratic", GRAM_STRUCT_SQDIST},
    [GRAM_CAUCHY] = {"cauchy", GRAM_STRUCT_SQDIST},
    [GRAM_PERIODIC] = {"periodic", GRAM_STRUCT_SQDIST},
    [GRAM_TOPHAT] = {"tophat", GRAM_STRUCT_SQDIST},
    [GRAM_EPANECHNIKOV] = {"epanechnikov", GRAM_STRUCT_SQDIST},
    [GRAM_EXPONENTIAL] = {"exponential", GRAM_STRUCT_SQDIST},
    [GRAM_TRIANGULAR] = {"triangular", GRAM_STRUCT_SQDIST},
    [GRAM_COSINE_WINDOW] = {"cosine_window", GRAM_STRUCT_SQDIST},
    [GRAM_NEG_L2] = {"neg_l2", GRAM_STRUCT_SQDIST},
    [GRAM_LAPLACIAN_L1] = {"laplacian_l1", GRAM_STRUCT_L1},
    [GRAM_NEG_L1] = {"neg_l1", GRAM_STRUCT_L1},
    [GRAM_LINEAR] = {"linear", GRAM_STRUCT_DOT},
    [GRAM_POLYNOMIAL] = {"polynomial", GRAM_STRUCT_DOT},
    [GRAM_COSINE] = {"cosine", GRAM_STRUCT_DOT},
    [GRAM_CONSTANT] = {"constant", GRAM_STRUCT_CONST},
    [GRAM_WHITE] = {"white", GRAM_STRUCT_CONST},
    [GRAM_MATERN] = {"matern", GRAM_STRUCT_SQDIST},
    [GRAM_SIGMOID] = {"sigmoid", GRAM_STRUCT_DOT},
    [GRAM_SOFTMAX] = {"softmax", GRAM_STRUCT_DOT},
    [GRAM_ARCCOS] = {"arccos", GRAM_STRUCT_DOT},
};

gram_structure gram__family_structure(gram_family f) { return FAMILY[f].structure; }
const char *gram__family_name(gram_family f) { return FAMILY[f].name; }

int gram__leaf_nonnegative(const gram__leaf *L)
{
    switch (L->family) {
    case GRAM_NEG_L2:
    case GRAM_NEG_L1:
    case GRAM_LINEAR:
    case GRAM_COSINE:
    case GRAM_SIGMOID: return 0;
    case GRAM_POLYNOMIAL: return L->degree % 2 == 0;
    default: return 1;
    }
}

int gram__leaf_same_metric(const gram__leaf *a, const gram__leaf *b)
{
    int la = a->structure == GRAM_STRUCT_L1, lb = b->structure == GRAM_STRUCT_L1;
    if (a->structure == GRAM_STRUCT_CONST || b->structure == GRAM_STRUCT_CONST) return 0;
    if (la != lb || a->n_scale != b->n_scale) return 0;
    for (int64_t d = 0; d < a->n_scale; d++)
        if (a->inv_scale[d] != b->inv_scale[d]) return 0;
    return 1;
}

void gram__sincos_pi(double r, double *s, double *c)
{
    /* x = r - 2·round(r/2) is exact (Sterbenz), so the phase is that of r itself, however large:
     * sin(π·r) as sin(PI * r) rounds π·r, an error of ulp(π·r) radians (0.3 rad at r = 1e15; at
     * r ≥ 2^53 every double is an even integer, and the value 0). Then |x| ≤ 1/2 by
     * sin(π x) = sin(π (±1 - x)), cos(π x) = -cos(π (±1 - x)), so libm works near 0. */
    double x = r - 2.0 * nearbyint(0.5 * r), sg = 1.0;
    if (fabs(x) > 0.5) {
        x = copysign(1.0, x) - x;
        sg = -1.0;
    }
    *s = sin(PI * x);
    *c = sg * cos(PI * x);
}

double gram__leaf_radial(const gram__leaf *L, double t)
{
    double r, a, s;
    switch (L->family) {
    case GRAM_GAUSSIAN: return exp(-0.5 * t);
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: return exp(-sqrt(t));
    /* Past a = 1000, exp(-a) is 0 anyway; the check keeps t = ∞ (an overflowed distance) from
     * giving ∞ · 0 = NaN. */
    case GRAM_MATERN32: a = SQRT3 * sqrt(t); return a > 1000.0 ? 0.0 : (1.0 + a) * exp(-a);
    case GRAM_MATERN52: a = SQRT5 * sqrt(t); return a > 1000.0 ? 0.0 : (1.0 + a + a * a / 3.0) * exp(-a);
    case GRAM_RATIONAL_QUADRATIC: return exp(-L->alpha * log1p(t / (2.0 * L->alpha)));
    case GRAM_CAUCHY: return 1.0 / (1.0 + t);
    case GRAM_PERIODIC:
        s = 0.0, r = 0.0; /* t = ∞: an overflowed distance; sin(∞) is NaN */
        if (!isinf(t)) gram__sincos_pi(sqrt(t), &s, &r);
        return exp(-2.0 * s * s / (L->lengthscale[0] * L->lengthscale[0]));
    case GRAM_TOPHAT: return t < 1.0 ? 1.0 : 0.0;
    case GRAM_EPANECHNIKOV: return t < 1.0 ? 1.0 - t : 0.0;
    case GRAM_TRIANGULAR: r = sqrt(t); return r < 1.0 ? 1.0 - r : 0.0;
    case GRAM_COSINE_WINDOW: r = sqrt(t); return r < 1.0 ? cos(0.5 * PI * r) : 0.0;
    case GRAM_NEG_L2: return -sqrt(t);
    case GRAM_LAPLACIAN_L1: return exp(-t);
    case GRAM_NEG_L1: return -t;
    case GRAM_MATERN: return gram__matern_eval(L, t, 0, NULL);
    default: return 0.0;
    }
}

double gram__leaf_log_radial(const gram__leaf *L, double t)
{
    double r, a, s;
    switch (L->family) {
    case GRAM_GAUSSIAN: return -0.5 * t;
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: return -sqrt(t);
    case GRAM_MATERN32: a = SQRT3 * sqrt(t); return isinf(a) ? -INFINITY : log1p(a) - a;
    case GRAM_MATERN52: /* a capped where a² still fits; the cap moves the result < ulp(a)/2 */
        a = SQRT5 * sqrt(t);
        r = fmin(a, 1e18);
        return isinf(a) ? -INFINITY : log1p(r + r * r / 3.0) - a;
    case GRAM_RATIONAL_QUADRATIC: return -L->alpha * log1p(t / (2.0 * L->alpha));
    case GRAM_CAUCHY: return -log1p(t);
    case GRAM_PERIODIC:
        s = 0.0, r = 0.0;
        if (!isinf(t)) gram__sincos_pi(sqrt(t), &s, &r);
        return -2.0 * s * s / (L->lengthscale[0] * L->lengthscale[0]);
    case GRAM_TOPHAT: return t < 1.0 ? 0.0 : -INFINITY;
    case GRAM_EPANECHNIKOV: return t < 1.0 ? log1p(-t) : -INFINITY;
    case GRAM_TRIANGULAR: r = sqrt(t); return r < 1.0 ? log1p(-r) : -INFINITY;
    case GRAM_COSINE_WINDOW: r = sqrt(t); return r < 1.0 ? log(cos(0.5 * PI * r)) : -INFINITY;
    case GRAM_LAPLACIAN_L1: return -t;
    case GRAM_MATERN: return gram__matern_eval(L, t, 1, NULL);
    default: return log(gram__leaf_radial(L, t));
    }
}

/* cos θ = s/(|x||y|), clamped to [-1, 1]. sqrt(xx·yy) rather than √xx·√yy: where y = x, s, xx
 * and yy are the same sum and the rounded square's root is xx again, so θ = 0 exactly. Within 8ε
 * of ±1 it is ±1: there the rounding of s and of the norms (summed in different orders by the
 * engine's tables, a few ulps apart even for y = x or for D = 1, where every pair is parallel)
 * decides θ ∈ [0, √(16ε)] and not the data, so (anti)parallel points get θ = 0 (π) exactly, the
 * same in every path, at a cost of at most √(16ε) = 6e-8 in θ (gram.h). */
static double arccos_cos(double s, double xx, double yy)
{
    const double snap = 1.0 - 8.0 * DBL_EPSILON;
    double p = xx * yy, c = p > 0x1p-1000 && p < 0x1p1000 ? s / sqrt(p) : s / sqrt(xx) / sqrt(yy);
    return c >= snap ? 1.0 : c <= -snap ? -1.0 : c;
}

double gram__arccos_angular(int n, double c, double *dj)
{
    /* φ = π - θ = acos(-c) directly: π - acos(c) would lose φ's relative accuracy as θ → π, where
     * J_1 and J_2 vanish like φ³/3 and 4φ⁵/15. Below φ = 1 those two are summed as their Taylor
     * series in φ (sin φ - φ cos φ, and u + (u/2) cos u - (3/2) sin u with u = 2φ), whose terms
     * fall fast and do not cancel, instead of the closed forms, which do. */
    double phi = acos(-c), sn = sqrt(fmax(0.0, (1.0 - c) * (1.0 + c))), j1, j;
    if (n == 0) {
        if (dj) *dj = sn > 0.0 ? 1.0 / (PI * sn) : 0.0; /* ∂θ/∂c = -1/sin θ, infinite at 0, π */
        return phi / PI;
    }
    if (phi < 1.0) {
        double p2 = phi * phi, term = phi * p2 / 6.0, sum = 0.0; /* Σ (-1)^(k+1) 2k φ^(2k+1)/(2k+1)! */
        for (int k = 1; k < 20; k++) {
            double add = 2.0 * k * term;
            sum += k % 2 ? add : -add;
            if (add <= 1e-18 * sum) break;
            term *= p2 / ((2.0 * k + 2.0) * (2.0 * k + 3.0));
        }
        j1 = sum;
    } else {
        j1 = sn + phi * c;
    }
    if (n == 1) {
        if (dj) *dj = phi / PI; /* dJ_1/dc = π - θ */
        return j1 / PI;
    }
    if (phi < 1.0) {
        double u = 2.0 * phi, u2 = u * u, term = u * u2 * u2 / 120.0, sum = 0.0; /* k = 2 */
        for (int k = 2; k < 30; k++) {
            double add = (k - 1) * term; /* (-1)^k (k - 1) u^(2k+1)/(2k+1)! */
            sum += k % 2 ? -add : add;
            if (add <= 1e-18 * sum) break;
            term *= u2 / ((2.0 * k + 2.0) * (2.0 * k + 3.0));
        }
        j = sum;
    } else {
        j = 3.0 * sn * c + phi * (1.0 + 2.0 * c * c);
    }
    if (dj) *dj = 4.0 * j1 / PI; /* dJ_2/dc = 4 J_1 */
    return j / PI;
}

double gram__arccos_value(int n, double s, double xx, double yy, double *dj)
{
    if (xx <= 0.0 || yy <= 0.0) { /* a zero vector: see gram.h */
        if (dj) *dj = 0.0;
        return n == 0 ? 0.5 : 0.0;
    }
    double a = gram__arccos_angular(n, arccos_cos(s, xx, yy), dj);
    if (n == 0) return a;
    double m = n == 1 ? sqrt(xx) * sqrt(yy) : xx * yy;
    if (dj) *dj *= m;
    return m * a;
}

double gram__leaf_dot(const gram__leaf *L, double s, double xx, double yy)
{
    switch (L->family) {
    case GRAM_LINEAR: return L->sigma0 * L->sigma0 + s;
    case GRAM_POLYNOMIAL: {
        double b = L->gamma * s + L->coef0, p = 1.0;
        for (int e = L->degree; e > 0; e >>= 1, b *= b)
            if (e & 1) p *= b;
        return p;
    }
    case GRAM_COSINE: {
        if (xx <= 0.0 || yy <= 0.0) return 0.0;
        return s / (sqrt(xx) * sqrt(yy));
    }
    case GRAM_SIGMOID: return tanh(L->gamma * s + L->coef0);
    case GRAM_SOFTMAX: return exp(s);
    case GRAM_ARCCOS: return gram__arccos_value(L->degree, s, xx, yy, NULL);
    default: return 0.0;
    }
}

double gram__leaf_log_dot(const gram__leaf *L, double s, double xx, double yy)
{
    switch (L->family) {
    case GRAM_SOFTMAX: return s; /* exact where exp(s) under- or overflows */
    case GRAM_ARCCOS: /* the norms' powers as logs: finite where |x|^n |y|^n under- or overflows */
        if (L->degree == 0 || xx <= 0.0 || yy <= 0.0) return log(gram__arccos_value(L->degree, s, xx, yy, NULL));
        return 0.5 * L->degree * (log(xx) + log(yy)) + log(gram__arccos_angular(L->degree, arccos_cos(s, xx, yy), NULL));
    default: return log(gram__leaf_dot(L, s, xx, yy));
    }
}

double gram__leaf_const(const gram__leaf *L, int same)
{
    if (L->family == GRAM_CONSTANT) return L->value;
    if (L->family == GRAM_WHITE) return same ? L->noise : 0.0;
    return 0.0;
}

double gram__leaf_log_const(const gram__leaf *L, int same) { return log(gram__leaf_const(L, same)); }
