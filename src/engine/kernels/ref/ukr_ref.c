/* The reference microkernels: plain, portable C with the C library's transcendental functions.
 * They fill every slot of the contract, run everywhere, and are the oracle the SIMD tables are
 * tested against. Clarity first; they are not tuned. */
#include "../ukr.h"

#include <math.h>

static void stat_f64(gram_structure s, int64_t mr, int64_t n, int64_t D, const double *y,
                     const double *xp, double *T, int64_t ldt)
{
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < n; j++) {
            const double *x = xp + (j / GRAM_PANEL) * D * GRAM_PANEL + j % GRAM_PANEL;
            double acc = 0.0;
            for (int64_t d = 0; d < D; d++) {
                double a = y[i * D + d], b = x[d * GRAM_PANEL];
                if (s == GRAM_STRUCT_SQDIST) acc += (a - b) * (a - b);
                else if (s == GRAM_STRUCT_L1) acc += fabs(a - b);
                else acc += a * b;
            }
            T[i * ldt + j] = acc;
        }
}

static void stat_f32(gram_structure s, int64_t mr, int64_t n, int64_t D, const float *y,
                     const float *xp, float *T, int64_t ldt)
{
    /* The oracle for float32 inputs: statistics in double, rounded once. */
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < n; j++) {
            const float *x = xp + (j / GRAM_PANEL) * D * GRAM_PANEL + j % GRAM_PANEL;
            double acc = 0.0;
            for (int64_t d = 0; d < D; d++) {
                double a = y[i * D + d], b = x[d * GRAM_PANEL];
                if (s == GRAM_STRUCT_SQDIST) acc += (a - b) * (a - b);
                else if (s == GRAM_STRUCT_L1) acc += fabs(a - b);
                else acc += a * b;
            }
            T[i * ldt + j] = (float)acc;
        }
}

static double apply1(const gram__leaf *L, int logspace, double t, double yy, double xx)
{
    if (L->structure == GRAM_STRUCT_DOT)
        return logspace ? gram__leaf_log_dot(L, t, xx, yy) : gram__leaf_dot(L, t, xx, yy);
    return logspace ? gram__leaf_log_radial(L, t) : gram__leaf_radial(L, t);
}

static void apply_f64(const gram__leaf *L, int logspace, int64_t mr, int64_t n, double *T,
                      int64_t ldt, const double *yy, const double *xx)
{
    int dot = L->structure == GRAM_STRUCT_DOT;
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < n; j++)
            T[i * ldt + j] = apply1(L, logspace, T[i * ldt + j], dot ? yy[i] : 0, dot ? xx[j] : 0);
}

static void apply_f32(const gram__leaf *L, int logspace, int64_t mr, int64_t n, float *T,
                      int64_t ldt, const float *yy, const float *xx)
{
    int dot = L->structure == GRAM_STRUCT_DOT;
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < n; j++)
            T[i * ldt + j] = (float)apply1(L, logspace, T[i * ldt + j], dot ? yy[i] : 0, dot ? xx[j] : 0);
}

static void sum_f64(int64_t mr, int64_t n, const double *T, int64_t ldt, const double *W, int64_t V,
                    double *P)
{
    for (int64_t i = 0; i < mr; i++)
        for (int64_t v = 0; v < V; v++) {
            double acc = 0.0;
            for (int64_t j = 0; j < n; j++) acc += T[i * ldt + j] * W[j * V + v];
            P[i * V + v] = acc;
        }
}

static void sum_f32(int64_t mr, int64_t n, const float *T, int64_t ldt, const double *W, int64_t V,
                    double *P)
{
    for (int64_t i = 0; i < mr; i++)
        for (int64_t v = 0; v < V; v++) {
            double acc = 0.0;
            for (int64_t j = 0; j < n; j++) acc += (double)T[i * ldt + j] * W[j * V + v];
            P[i * V + v] = acc;
        }
}

#define LOGSUM_BODY(TYPE)                                                                          \
    for (int64_t i = 0; i < mr; i++)                                                               \
        for (int64_t v = 0; v < V; v++) {                                                          \
            double m = -INFINITY;                                                                  \
            for (int64_t j = 0; j < n; j++) {                                                      \
                double a = (double)T[i * ldt + j] + LW[j * V + v];                                 \
                if (a > m) m = a;                                                                  \
            }                                                                                      \
            double s = 0.0;                                                                        \
            if (m > -INFINITY)                                                                     \
                for (int64_t j = 0; j < n; j++) s += exp((double)T[i * ldt + j] + LW[j * V + v] - m); \
            MX[i * V + v] = m;                                                                     \
            S[i * V + v] = s;                                                                      \
        }

static void logsum_f64(int64_t mr, int64_t n, const double *T, int64_t ldt, const double *LW,
                       int64_t V, double *MX, double *S)
{
    LOGSUM_BODY(double)
}

static void logsum_f32(int64_t mr, int64_t n, const float *T, int64_t ldt, const double *LW,
                       int64_t V, double *MX, double *S)
{
    LOGSUM_BODY(float)
}

static void exp_f64(int64_t n, const double *x, double *y)
{
    for (int64_t i = 0; i < n; i++) y[i] = exp(x[i]);
}

static void exp_f32(int64_t n, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++) y[i] = (float)exp((double)x[i]);
}

const gram__ukr gram__ukr_ref = {
    "ref", stat_f64, stat_f32, apply_f64, apply_f32, sum_f64, sum_f32,
    logsum_f64, logsum_f32, exp_f64, exp_f32, NULL, NULL, /* no fused kernels: the driver's three passes */
    NULL, NULL, NULL, NULL, NULL, NULL,
};

const gram__ukr *gram__ukr_for(gram_arch arch)
{
    switch (arch) {
    case GRAM_ARCH_REF: return &gram__ukr_ref;
#ifdef GRAM_HAVE_X86_KERNELS
    case GRAM_ARCH_AVX2: return &gram__ukr_avx2;
    case GRAM_ARCH_AVX512: return &gram__ukr_avx512;
#endif
    default: return NULL;
    }
}
