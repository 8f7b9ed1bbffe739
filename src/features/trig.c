/* Vector cosine and sine for the trigonometric feature maps, whose elementwise map would otherwise
 * cost several times the projection (libm's scalar cos/sin per feature).
 *
 * Cody & Waite's reduction (Cody & Waite 1980, "Software Manual for the Elementary Functions"):
 * n = nearest integer to x·2/π, r = x - n·π/2 with π/2 split into parts whose products with n are
 * exact, then minimax polynomials on |r| ≤ π/4 and the quadrant n mod 4 picking ±sin r or ±cos r.
 * The polynomial coefficients are the published ones of fdlibm's __kernel_sin/__kernel_cos
 * (float64; Sun Microsystems 1993) and of Moshier's Cephes sinf/cosf (float32; "Methods and
 * Programs for Mathematical Functions", 1989). Arguments beyond the reduction's exact range
 * (|x| > 1e5 in float64, 8192 in float32) are redone by libm; a non-finite argument is reported.
 *
 * The loops are branch-free so that the compiler vectorises them; on x86-64 with GCC they are
 * built for AVX-512, AVX2 and the baseline and chosen at load time (target_clones). No FMA is
 * contracted (ISO C mode), so every clone gives the same bits. */
#include "features.h"

#include <math.h>

#define PIO2_1 1.57079632673412561417e+00  /* first 33 bits of π/2 */
#define PIO2_1T 6.07710050650619224932e-11 /* π/2 - PIO2_1 */
#define TWO_OVER_PI 6.36619772367581382433e-01

/* amp·cos v and amp·sin v for |v| ≤ 1e5 (other v give garbage, redone by the caller). */
static inline void sincos_f64(double v, double amp, double *c, double *s)
{
    const double nf = (v * TWO_OVER_PI + 0x1.8p52) - 0x1.8p52;
    const double r = (v - nf * PIO2_1) - nf * PIO2_1T;
    const double z = r * r;
    const double sp = r + r * z * (-1.66666666666666324348e-01 + z * (8.33333333332248946124e-03 +
                      z * (-1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 +
                      z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)))));
    const double cp = 1.0 - 0.5 * z + z * z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 +
                      z * (2.48015872894767294178e-05 + z * (-2.75573143513906633035e-07 +
                      z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))));
    const int q = (int)(fabs(v) <= 1e5 ? nf : 0.0) & 3; /* no conversion of out-of-range values */
    const double cs = q & 1 ? sp : cp, sn = q & 1 ? cp : sp;
    *c = amp * ((q + 1) & 2 ? -cs : cs);
    *s = amp * (q & 2 ? -sn : sn);
}

#define DP1 1.5703125f
#define DP2 4.837512969970703125e-4f
#define DP3 7.54978995489188216e-8f

/* The same in float32 for |v| ≤ 8192. */
static inline void sincos_f32(float v, float amp, float *c, float *s)
{
    const float nf = (v * 0.636619772367581343f + 0x1.8p23f) - 0x1.8p23f;
    const float r = ((v - nf * DP1) - nf * DP2) - nf * DP3;
    const float z = r * r;
    const float sp = r + r * z * (-1.6666654611e-1f + z * (8.3321608736e-3f + z * -1.9515295891e-4f));
    const float cp = 1.0f - 0.5f * z + z * z * (4.166664568298827e-2f + z * (-1.388731625493765e-3f +
                     z * 2.443315711809948e-5f));
    const int q = (int)(fabsf(v) <= 8192.0f ? nf : 0.0f) & 3;
    const float cs = q & 1 ? sp : cp, sn = q & 1 ? cp : sp;
    *c = amp * ((q + 1) & 2 ? -cs : cs);
    *s = amp * (q & 2 ? -sn : sn);
}

/* The vector loops, one per output shape so that each stays branch-free. */
#define SINCOS_LOOPS(T, FN, LIMIT, ABS, COS, SIN)                                                  \
    int far = 0;                                                                                   \
    if (s)                                                                                         \
        for (int64_t j = 0; j < n; j++) {                                                          \
            FN(x[j], amp, &c[j], &s[j]);                                                           \
            far |= !(ABS(x[j]) <= LIMIT);                                                          \
        }                                                                                          \
    else                                                                                           \
        for (int64_t j = 0; j < n; j++) {                                                          \
            T unused;                                                                              \
            FN(x[j], amp, &c[j], &unused);                                                         \
            far |= !(ABS(x[j]) <= LIMIT);                                                          \
        }                                                                                          \
    if (!far) return 0;                                                                            \
    int bad = 0;                                                                                   \
    for (int64_t j = 0; j < n; j++)                                                                \
        if (!(ABS(x[j]) <= LIMIT)) {                                                               \
            bad |= !isfinite(x[j]);                                                                \
            c[j] = amp * COS(x[j]);                                                                \
            if (s) s[j] = amp * SIN(x[j]);                                                         \
        }                                                                                          \
    return bad;

GRAM__CLONES
int gram__sincos_f64(int64_t n, const double *x, double amp, double *c, double *s)
{
    SINCOS_LOOPS(double, sincos_f64, 1e5, fabs, cos, sin)
}

GRAM__CLONES
int gram__sincos_f32(int64_t n, const float *x, float amp, float *c, float *s)
{
    SINCOS_LOOPS(float, sincos_f32, 8192.0f, fabsf, cosf, sinf)
}
