/* The Matérn kernel of any smoothness ν > 0 (scikit-learn's Matern(nu=...)):
 *
 *     k(r) = 2^(1-ν)/Γ(ν) · z^ν K_ν(z),   z = √(2ν) r/ℓ,   k(0) = 1,
 *
 * with gram's own modified Bessel function K of real order. Where ν is 0.5, 1.5 or 2.5 the family
 * is matern12/32/52 (kernel.c turns it into those closed forms).
 *
 * The Bessel function. With ν = μ + n, |μ| ≤ 1/2, K_μ(z) and K_μ+1(z) come from Temme's series for
 * z ≤ 2 (N. M. Temme, "On the numerical evaluation of the modified Bessel function of the third
 * kind", J. Comput. Phys. 19 (1975) 324–337) and from Steed's continued fraction CF2 with Temme's
 * normalisation for z > 2 (I. J. Thompson & A. R. Barnett, "Modified Bessel functions I_ν(z) and
 * K_ν(z) of real order and complex argument, to selected accuracy", Comput. Phys. Commun. 47
 * (1987) 245–257); both need 1/Γ(1 ± μ) and (1/Γ(1-μ) - 1/Γ(1+μ))/(2μ), which the Taylor series
 * of 1/Γ(1+x) gives without cancellation (coefficients: Abramowitz & Stegun 6.1.34, Wrench 1968).
 *
 * The recurrence. K_ν itself overflows for large ν at small z and underflows at large z, while
 * the kernel stays in [0, 1]. So the order is raised in the normalised quantities
 *
 *     M_j = (z/2)^m K_m(z) / Γ(m + 1),   m = μ + j,
 *
 * for which K_m+1 = K_m-1 + (2m/z) K_m becomes
 *
 *     M_j+1 = (m M_j + (z/2)² M_j-1 / m) / (m + 1),
 *
 * a sum of positive terms (no cancellation; m ≥ 1/2), and then k = 2ν M_n. The derivative is as
 * simple: d(z^ν K_ν)/dz = -z^ν K_ν-1 gives ∂k/∂log ℓ = -z dk/dz = z² M_n-1. For z ≤ 2 every M
 * is at most 1/(2m) and is computed directly, so k ≈ 1 keeps its full relative accuracy; for
 * z > 2 the start is carried as a logarithm and the recurrence rescaled, so nothing over- or
 * underflows, and the log-value for log-space sums stays finite wherever k underflows.
 */
#include "kernel.h"

#include <float.h>
#include <math.h>

#define PI 3.14159265358979323846
#define LOG2 0.69314718055994530942
#define EPS DBL_EPSILON

/* 1/Γ(1 + x) = Σ_k RG[k] x^k (A&S 6.1.34; |x| ≤ 1/2 needs the terms through x^25). */
static const double RG[26] = {
    1.0,
    0.5772156649015328606065,
    -0.655878071520253881077,
    -0.042002635034095235529,
    0.1665386113822914895017,
    -0.04219773455554433674821,
    -0.009621971527876973562115,
    0.007218943246663099542395,
    -0.001165167591859065112114,
    -0.0002152416741149509728157,
    0.0001280502823881161861532,
    -0.00002013485478078823865569,
    -0.000001250493482142670657345,
    0.000001133027231981695882374,
    -2.05633841697760710345e-7,
    6.116095104481415817862e-9,
    5.002007644469222930056e-9,
    -1.181274570487020144588e-9,
    1.043426711691100510492e-10,
    7.78226343990507125405e-12,
    -3.696805618642205708188e-12,
    5.100370287454475979015e-13,
    -2.058326053566506783222e-14,
    -5.34812253942301798237e-15,
    1.226778628238260790159e-15,
    -1.181259301697458769514e-16,
};

void gram__matern_prepare(gram__leaf *L)
{
    double nu = L->nu;
    int n = (int)floor(nu + 0.5);
    /* ν < 1/2: the base order is -ν, whose pair (K_-ν = K_ν, K_1-ν) gives k and its derivative
     * directly (n = 0 below) */
    double mu = n == 0 ? -nu : nu - n;
    double ev = 0.0, od = 0.0, mk = 1.0; /* even and odd parts of Σ RG[k] μ^k */
    for (int k = 0; k < 26; k++, mk *= mu) {
        if (k % 2 == 0) ev += RG[k] * mk;
        else od += RG[k] * mk;
    }
    double g1 = 0.0, m2 = mu * mu, mk2 = 1.0; /* -(Σ_k odd RG[k] μ^(k-1)) */
    for (int k = 1; k < 26; k += 2, mk2 *= m2) g1 -= RG[k] * mk2;
    L->bk_n = n;
    L->bk[0] = mu;
    L->bk[1] = g1;      /* (1/Γ(1-μ) - 1/Γ(1+μ)) / (2μ) */
    L->bk[2] = ev;      /* (1/Γ(1-μ) + 1/Γ(1+μ)) / 2 */
    L->bk[3] = ev + od; /* 1/Γ(1+μ) */
    L->bk[4] = ev - od; /* 1/Γ(1-μ) */
}

/* Temme's series, z ≤ 2: sum = K_μ(z) and sum1 = (z/2) K_μ+1(z). */
static void temme(const gram__leaf *L, double z, double *sum, double *sum1)
{
    const double mu = L->bk[0], g1 = L->bk[1], g2 = L->bk[2], rp = L->bk[3], rm = L->bk[4];
    const double h = 0.5 * z, d = -log(h), e = mu * d, pm = PI * mu;
    const double fact = fabs(pm) < 1e-8 ? 1.0 + pm * pm / 6.0 : pm / sin(pm);
    const double fact2 = fabs(e) < 1e-8 ? 1.0 + e * e / 6.0 : sinh(e) / e;
    double f = fact * (g1 * cosh(e) + g2 * fact2 * d); /* f_0 */
    double p = 0.5 * exp(e) / rp;                     /* p_0 = (z/2)^-μ Γ(1+μ) / 2 */
    double q = 0.5 * exp(-e) / rm;                    /* q_0 = (z/2)^μ Γ(1-μ) / 2 */
    double c = 1.0, s = f, s1 = p;
    const double h2 = h * h;
    for (int k = 1; k < 500; k++) {
        f = (k * f + p + q) / (k * (double)k - mu * mu);
        c *= h2 / k;
        p /= k - mu;
        q /= k + mu;
        double t = c * f;
        s += t;
        s1 += c * (p - k * f);
        if (fabs(t) < EPS * fabs(s)) break;
    }
    *sum = s;
    *sum1 = s1;
}

/* Steed's CF2, z > 2: log K_μ(z) and log K_μ+1(z). */
static void steed(double mu, double z, double *lk0, double *lk1)
{
    const double a1 = 0.25 - mu * mu;
    double b = 2.0 * (1.0 + z), d = 1.0 / b, h = d, dh = d;
    double q1 = 0.0, q2 = 1.0, q = a1, c = a1, a = -a1, s = 1.0 + q * dh;
    for (int i = 2; i < 100000; i++) {
        a -= 2.0 * (i - 1);
        c = -a * c / i;
        double qn = (q1 - b * q2) / a;
        q1 = q2;
        q2 = qn;
        q += c * qn;
        b += 2.0;
        d = 1.0 / (b + a * d);
        dh = (b * d - 1.0) * dh;
        h += dh;
        double ds = q * dh;
        s += ds;
        if (fabs(ds) < EPS * fabs(s) && fabs(dh) < EPS * fabs(h)) break;
    }
    h *= a1;
    *lk0 = 0.5 * log(PI / (2.0 * z)) - z - log(s);
    *lk1 = *lk0 + log((mu + z + 0.5 - h) / z);
}

double gram__matern_eval(const gram__leaf *L, double t, int want_log, double *dk)
{
    const double nu = L->nu;
    if (!(t > 0.0)) { /* t = 0 (or the -0 of a rounded distance) */
        if (dk) *dk = 0.0;
        return want_log ? 0.0 : 1.0;
    }
    const double z = sqrt(2.0 * nu * t), lz2 = log(0.5 * z), mu = L->bk[0];
    if (isinf(z)) { /* an overflowed distance */
        if (dk) *dk = 0.0;
        return want_log ? -INFINITY : 0.0;
    }
    const int n = L->bk_n;
    double k, g, lk, lg;
    int logs; /* k, g are set as values (0) or lk, lg as logs (1) */
    if (!(z <= 1e100)) {
        /* z ≫ ν² (ν ≤ 1e4): K_ν(z) ≈ K_ν-1(z) ≈ √(π/(2z)) e^-z, to far below double precision
         * relative to z; k itself is 0, its log -z + ... (z may be +inf: an overflowed distance) */
        double lK = 0.5 * log(PI / (2.0 * z)) - z, lgn = lgamma(nu);
        lk = LOG2 + nu * lz2 + lK - lgn;
        lg = 2.0 * LOG2 + (nu + 1.0) * lz2 + lK - lgn;
        logs = 1;
    } else if (z <= 2.0) {
        double s0, s1;
        temme(L, z, &s0, &s1);
        const double pw = pow(0.5 * z, mu), rp = L->bk[3];
        if (n == 0) {
            /* μ = -ν: k = 2 (z/2)^ν K_ν / Γ(ν), ∂k/∂log ℓ = 4 (z/2)^(ν+1) K_1-ν / Γ(ν), with
             * 1/Γ(ν) = ν / Γ(1+ν) = ν · L->bk[4] */
            const double c = 2.0 * nu * L->bk[4] / pw;
            k = c * s0;
            g = 2.0 * c * s1;
        } else {
            double M = pw * s1 * rp / (mu + 1.0);       /* M_1 */
            double W = 0.25 * z * z * pw * rp * s0;     /* (z/2)² M_0 */
            for (int j = 1; j < n; j++) {
                const double m = mu + j, Mn = (m * M + W / m) / (m + 1.0);
                W = 0.25 * z * z * M;
                M = Mn;
            }
            k = 2.0 * nu * M;
            g = 4.0 * W;
        }
        logs = 0;
    } else {
        double l0, l1;
        const double lrp = log(L->bk[3]);
        steed(mu, z, &l0, &l1);
        if (n == 0) {
            const double lc = LOG2 + log(nu * L->bk[4]) + nu * lz2; /* log 2(z/2)^ν / Γ(ν) */
            lk = lc + l0;
            lg = lc + LOG2 + lz2 + l1; /* K_μ+1 = K_1-ν */
        } else {
            /* M_1 = 1 · e^S; W = (z/2)² M_0 in the same scale; rescaled as it grows */
            double S = (mu + 1.0) * lz2 + l1 + lrp - log(mu + 1.0);
            double M = 1.0, W = exp(2.0 * lz2 + mu * lz2 + l0 + lrp - S);
            const double q = 0.25 * z * z;
            for (int j = 1; j < n; j++) {
                const double m = mu + j, Mn = (m * M + W / m) / (m + 1.0);
                W = q * M;
                M = Mn;
                if (M > 1e280 || W > 1e280) {
                    const double r = M > W ? M : W;
                    M /= r;
                    W /= r;
                    S += log(r);
                }
            }
            lk = log(2.0 * nu) + S + log(M);
            lg = 2.0 * LOG2 + S + log(W);
        }
        logs = 1;
    }
    if (logs) {
        if (dk) *dk = exp(lg);
        return want_log ? lk : exp(lk);
    }
    if (dk) *dk = g;
    return want_log ? log(k) : k;
}
