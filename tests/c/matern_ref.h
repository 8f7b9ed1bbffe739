/* A long-double reference for the general Matérn kernel, independent of gram's algorithm: K_ν from
 * its integral representation K_ν(z) = ∫_0^∞ exp(-z cosh t) cosh(νt) dt (DLMF 10.32.9), by the
 * trapezoidal rule, which converges exponentially for this smooth, double-exponentially decaying
 * integrand (the step is a tenth of the width of its peak, and the sum runs until the terms fall
 * below e^-90 of the peak). Returns log K_ν(z); then
 *     k = 2^(1-ν)/Γ(ν) z^ν K_ν(z),   ∂k/∂log ℓ = z² (z/2)^(ν-1) K_(ν-1)(z) / Γ(ν). */
#ifndef GRAM_TEST_MATERN_REF_H
#define GRAM_TEST_MATERN_REF_H

#include <math.h>

static inline long double matern_ref_log_k(long double nu, long double z)
{
    long double an = fabsl(nu);
    long double tp = asinhl(an / z); /* the peak of -z cosh t + |ν| t */
    long double phi_max = -z * coshl(tp) + an * tp;
    long double h = 0.1L / sqrtl(1.0L + z * coshl(tp) + an);
    long double s = 0.0L;
    for (long i = 0;; i++) {
        long double t = i * h, phi = -z * coshl(t) + an * t;
        long double term = expl(phi - phi_max) * 0.5L * (1.0L + expl(-2.0L * an * t));
        s += i == 0 ? 0.5L * term : term;
        if (t > tp && phi - phi_max < -90.0L) break;
    }
    return phi_max + logl(s * h);
}

/* log k(z) and log ∂k/∂log ℓ for z > 0 */
static inline long double matern_ref_log_value(long double nu, long double z)
{
    return (1.0L - nu) * logl(2.0L) - lgammal(nu) + nu * logl(z) + matern_ref_log_k(nu, z);
}

static inline long double matern_ref_log_dlogl(long double nu, long double z)
{
    return 2.0L * logl(z) + (nu - 1.0L) * logl(z / 2.0L) + matern_ref_log_k(nu - 1.0L, z) - lgammal(nu);
}

#endif
