/* One kernel value and its analytic gradient in the log-space hyperparameters θ.
 *
 * Each leaf writes the derivatives of its own value into its slice of grad; the program then
 * runs on a stack of values, and because the hyperparameters of every sub-expression occupy one
 * contiguous index range (see kernel.c), the chain rule through add, mul and scale is a rescaling
 * of ranges of grad in place: no per-entry gradient vectors are needed.
 *
 * Derivatives in θ = log ℓ: with z_d = Δ_d / ℓ_d, ∂(z_d²)/∂θ_d = -2 z_d², ∂|z_d|/∂θ_d = -|z_d|,
 * and for the dot product ∂(u_d v_d)/∂θ_d = -2 u_d v_d. For a radial f(t), t = Σ z_d²,
 * ∂k/∂θ_d = g · z_d² with g = -2 f'(t), which every family below writes without a 1/r that could
 * blow up at r = 0 (where it is 0 in the limit).
 */
#include "kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846
#define SQRT3 1.7320508075688772935
#define SQRT5 2.2360679774997896964

/* u/(1+u) - log1p(u), accurate also for small u where the two terms nearly cancel; lp is
 * log1p(u), already computed by the caller. */
static double rq_alpha_term(double u, double lp)
{
    double w = u / (1.0 + u); /* log1p(u) = -log1p(-w) */
    if (fabs(w) < 0.125) {
        /* w + log1p(-w) = -Σ_{k≥2} w^k / k */
        double sum = 0.0, wk = w * w;
        for (int k = 2; k < 40; k++, wk *= w) {
            double t = wk / k;
            sum += t;
            if (fabs(t) <= 1e-17 * fabs(sum)) break;
        }
        return -sum;
    }
    return w - lp;
}

/* b^n for an integer n ≥ 0 (as family.c computes the polynomial). */
static double ipow(double b, int n)
{
    double p = 1.0;
    for (int e = n; e > 0; e >>= 1, b *= b)
        if (e & 1) p *= b;
    return p;
}

/* Products in the program: 0 times anything is 0. A factor that is exactly 0 (a zero scale, a
 * compact kernel outside its support, white off the diagonal) makes the product 0 even where the
 * other factor overflowed to ±inf, which IEEE would turn into NaN; the other factor is a finite
 * number too large for a double, so 0 is the exact product. */
static inline double mul0(double a, double b) { return a == 0.0 || b == 0.0 ? 0.0 : a * b; }

/* d(a^p)/da = p·a^(p-1), p > 0; at a = 0 it is 0 for p > 1 and +inf for p < 1, which multiplies
 * (through mul0) only derivatives that are not 0. */
static inline double pow_slope(double a, double p) { return p == 1.0 ? 1.0 : p * pow(a, p - 1.0); }

/* The statistic t of a SQDIST or L1 leaf (scaled squared distance, or scaled L1 distance), the
 * difference taken before scaling; with ARD lengthscales and g given, each dimension's term z_d²
 * (or |z_d|) is left in g[d], to be rescaled into that lengthscale's derivative. */
static double leaf_stat(const gram__leaf *L, int64_t D, const double *y, const double *x, double *g)
{
    int l1 = L->structure == GRAM_STRUCT_L1, ard = L->n_scale > 1;
    double t = 0.0;
    for (int64_t d = 0; d < D; d++) {
        double z = (y[d] - x[d]) * L->inv_scale[ard ? d : 0];
        double td = l1 ? fabs(z) : z * z;
        t += td;
        if (g && ard) g[d] = td;
    }
    return t;
}

/* Value of leaf L at (y, x); if g is not NULL, also its derivatives in its own hyperparameters
 * (g[0 .. gram__leaf_n_hyper(L))). */
static double leaf_eval(const gram__leaf *L, int64_t D, const double *y, const double *x, int same,
                        double *g)
{
    int ard = L->n_scale > 1;
    if (L->structure == GRAM_STRUCT_CONST) {
        double v = gram__leaf_const(L, same);
        /* ∂c/∂log c = c; white: 0 off the diagonal (a white leaf with noise 0 has no hyperparameter) */
        if (g && (L->family == GRAM_CONSTANT || L->noise > 0.0)) g[0] = v;
        return v;
    }

    if (L->structure == GRAM_STRUCT_DOT) {
        double s = 0.0, xx = 0.0, yy = 0.0;
        for (int64_t d = 0; d < D; d++) {
            double is = L->inv_scale[ard ? d : 0], u = y[d] * is, v = x[d] * is;
            s += u * v;
            xx += v * v;
            yy += u * u;
        }
        double f = gram__leaf_dot(L, s, xx, yy);
        if (!g) return f;
        /* ∂k/∂θ_d = -2 (A s_d + B xx_d + C yy_d): A, B, C the partials in s, |x|², |y|². */
        double A = 0.0, B = 0.0, C = 0.0;
        int64_t nls = L->n_scale;
        switch (L->family) {
        case GRAM_LINEAR:
            A = 1.0;
            if (L->sigma0 > 0.0) g[nls] = 2.0 * L->sigma0 * L->sigma0;
            break;
        case GRAM_POLYNOMIAL: {
            double b = L->gamma * s + L->coef0;
            double dfb = L->degree * ipow(b, L->degree - 1); /* ∂f/∂b */
            A = dfb * L->gamma;
            g[nls] = dfb * L->gamma * s;
            if (L->coef0 > 0.0) g[nls + 1] = dfb * L->coef0;
            break;
        }
        case GRAM_COSINE:
            if (xx > 0.0 && yy > 0.0) {
                A = 1.0 / (sqrt(xx) * sqrt(yy));
                B = -0.5 * f / xx;
                C = -0.5 * f / yy;
            }
            break;
        case GRAM_SIGMOID: {
            /* ∂tanh(b)/∂b = 1/cosh²(b): no cancellation where tanh is ±1 (and 0 once cosh overflows) */
            double ch = cosh(L->gamma * s + L->coef0), dfb = 1.0 / (ch * ch);
            A = dfb * L->gamma;
            g[nls] = mul0(A, s);
            if (L->coef0 > 0.0) g[nls + 1] = dfb * L->coef0;
            break;
        }
        case GRAM_SOFTMAX: A = f; break;
        case GRAM_ARCCOS: {
            /* k = |x|^n |y|^n J_n(θ)/π, cos θ = s/(|x||y|): dj = ∂k/∂cos θ at fixed norms. An
             * isotropic ℓ scales k by ℓ^(-2n) and leaves θ alone, so its derivative is -2n·k
             * exactly (the three terms below would cancel to it). */
            double dj = 0.0;
            gram__arccos_value(L->degree, s, xx, yy, &dj);
            if (!ard) {
                g[0] = -2.0 * L->degree * f;
                return f;
            }
            if (xx > 0.0 && yy > 0.0) {
                double c = s / (sqrt(xx) * sqrt(yy)), hn = 0.5 * L->degree * f;
                A = dj / (sqrt(xx) * sqrt(yy));
                B = (hn - 0.5 * dj * c) / xx;
                C = (hn - 0.5 * dj * c) / yy;
            }
            break;
        }
        default: break;
        }
        if (ard) {
            for (int64_t d = 0; d < D; d++) {
                double is = L->inv_scale[d], u = y[d] * is, v = x[d] * is;
                g[d] = -2.0 * (A * u * v + B * v * v + C * u * u);
            }
        } else {
            g[0] = -2.0 * (mul0(A, s) + mul0(B, xx) + mul0(C, yy)); /* s may have overflowed */
        }
        return f;
    }

    /* SQDIST and L1: per-dimension terms z_d² (or |z_d|) go to g[d] first, to be rescaled. */
    double t = leaf_stat(L, D, y, x, g);
    if (!g) return gram__leaf_radial(L, t);
    if (!ard) g[0] = t;

    if (L->family == GRAM_PERIODIC) {
        /* t = (ρ/p)²: θ0 = log ℓ, θ1 = log p. The value as family.c computes it, sharing sin. */
        double r = sqrt(t), sn = 0.0, cs = 1.0;
        if (isfinite(r)) gram__sincos_pi(r, &sn, &cs);
        double f = exp(-2.0 * sn * sn / (L->lengthscale[0] * L->lengthscale[0]));
        double il2 = 1.0 / (L->lengthscale[0] * L->lengthscale[0]);
        g[0] = f * 4.0 * sn * sn * il2;
        g[1] = isfinite(r) ? f * 4.0 * PI * r * il2 * sn * cs : 0.0;
        return f;
    }

    if (L->family == GRAM_MATERN) {
        /* ∂k/∂log ℓ_d = G · z_d²/t, G the isotropic derivative (0 at t = 0) */
        double G, f = gram__matern_eval(L, t, 0, &G), gc = t > 0.0 && isfinite(t) ? G / t : 0.0;
        int64_t n = ard ? L->n_scale : 1;
        for (int64_t d = 0; d < n; d++) g[d] = gc == 0.0 ? 0.0 : gc * g[d];
        return f;
    }

    /* rational quadratic: log1p(u) once, for the value (as family.c) and the alpha derivative */
    double rq_u = 0.0, rq_lp = 0.0, f;
    if (L->family == GRAM_RATIONAL_QUADRATIC) {
        rq_u = t / (2.0 * L->alpha);
        rq_lp = log1p(rq_u);
        f = exp(-L->alpha * rq_lp);
    } else {
        f = gram__leaf_radial(L, t);
    }
    double r = sqrt(t), gc = 0.0, a;
    switch (L->family) {
    case GRAM_GAUSSIAN: gc = f; break;
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: gc = r > 0.0 ? f / r : 0.0; break;
    case GRAM_MATERN32: a = SQRT3 * r; gc = 3.0 * exp(-a); break;
    case GRAM_MATERN52: a = SQRT5 * r; gc = (5.0 / 3.0) * (1.0 + a) * exp(-a); break;
    case GRAM_RATIONAL_QUADRATIC: {
        double u = rq_u;
        gc = f / (1.0 + u);
        g[ard ? L->n_scale : 1] = isfinite(u) ? L->alpha * f * rq_alpha_term(u, rq_lp) : 0.0;
        break;
    }
    case GRAM_CAUCHY: gc = 2.0 * f * f; break;
    case GRAM_TOPHAT: gc = 0.0; break;
    case GRAM_EPANECHNIKOV: gc = t < 1.0 ? 2.0 : 0.0; break;
    case GRAM_TRIANGULAR: gc = r > 0.0 && r < 1.0 ? 1.0 / r : 0.0; break;
    case GRAM_COSINE_WINDOW: gc = r > 0.0 && r < 1.0 ? 0.5 * PI * sin(0.5 * PI * r) / r : 0.0; break;
    case GRAM_NEG_L2: gc = r > 0.0 ? 1.0 / r : 0.0; break;
    case GRAM_LAPLACIAN_L1: gc = f; break; /* ∂k/∂θ_d = e^{-t} |z_d| */
    case GRAM_NEG_L1: gc = 1.0; break;
    default: break;
    }
    /* Overflowed distances (t = ∞) leave f = 0 for the decaying families: the limit of the
     * derivative is 0 too, so do not form 0 · ∞. */
    int64_t n = ard ? L->n_scale : 1;
    for (int64_t d = 0; d < n; d++) g[d] = (gc == 0.0 || !isfinite(g[d])) ? 0.0 : gc * g[d];
    return f;
}

/* The log of leaf L at (y, x) (L is non-negative: it lies in a log region, kernel.h's
 * GRAM__OPF_LOG); if g is not NULL, also the derivatives of that log in the leaf's own
 * hyperparameters. For the families with an exponential form (gaussian, laplacian, matern12/32/52,
 * exponential, rational quadratic, periodic, cauchy, laplacian_l1) both come from the same terms
 * as leaf_eval's without the exp, so they stay exact where the value underflows; the other
 * families (general Matérn, the compact ones, an even polynomial, ...) take (∂k/∂θ)/k from
 * leaf_eval, and 0 where k is 0 (underflowed, or outside a compact support): the derivative of a
 * log that is -inf has no finite value, and the power above multiplies it by exp(p·log k) = 0. */
static double leaf_log_eval(const gram__leaf *L, int64_t D, const double *y, const double *x, int same,
                            double *g)
{
    gram_family f = L->family;
    int ard = L->n_scale > 1;
    if (L->structure == GRAM_STRUCT_CONST) {
        double v = gram__leaf_const(L, same);
        if (g && (f == GRAM_CONSTANT || L->noise > 0.0)) g[0] = v > 0.0 ? 1.0 : 0.0; /* ∂log c/∂log c */
        return gram__leaf_log_const(L, same);
    }
    if (f == GRAM_SOFTMAX) { /* log k = s: its derivatives are those of s, -2 u_d v_d */
        double s = 0.0;
        for (int64_t d = 0; d < D; d++) {
            double is = L->inv_scale[ard ? d : 0], u = y[d] * is, v = x[d] * is;
            s += u * v;
            if (g && ard) g[d] = -2.0 * u * v;
        }
        if (g && !ard) g[0] = -2.0 * s;
        return s;
    }
    int expform = f == GRAM_GAUSSIAN || f == GRAM_LAPLACIAN || f == GRAM_MATERN12 || f == GRAM_EXPONENTIAL ||
                  f == GRAM_MATERN32 || f == GRAM_MATERN52 || f == GRAM_RATIONAL_QUADRATIC ||
                  f == GRAM_PERIODIC || f == GRAM_CAUCHY || f == GRAM_LAPLACIAN_L1;
    if (!expform) {
        double v = leaf_eval(L, D, y, x, same, g);
        if (g) {
            int64_t nh = gram__leaf_n_hyper(L);
            for (int64_t h = 0; h < nh; h++) g[h] = v > 0.0 && isfinite(v) ? g[h] / v : 0.0;
        }
        return log(v);
    }
    double t = leaf_stat(L, D, y, x, g);
    double lv = gram__leaf_log_radial(L, t);
    if (!g) return lv;
    if (!ard) g[0] = t;
    double r = sqrt(t), gc = 0.0, a;
    switch (f) {
    case GRAM_PERIODIC: {
        /* log k = -2 sin²(π r)/ℓ²: θ0 = log ℓ, θ1 = log p (leaf_eval's derivatives over k) */
        double sn = 0.0, cs = 1.0;
        if (isfinite(r)) gram__sincos_pi(r, &sn, &cs);
        double il2 = 1.0 / (L->lengthscale[0] * L->lengthscale[0]);
        g[0] = 4.0 * sn * sn * il2;
        g[1] = isfinite(r) ? 4.0 * PI * r * il2 * sn * cs : 0.0;
        return lv;
    }
    case GRAM_GAUSSIAN:
    case GRAM_LAPLACIAN_L1: gc = 1.0; break;
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: gc = r > 0.0 ? 1.0 / r : 0.0; break;
    case GRAM_MATERN32: a = SQRT3 * r; gc = 3.0 / (1.0 + a); break;
    case GRAM_MATERN52: /* (5/3)(1 + a)/(1 + a + a²/3), → 5/a where a² would overflow */
        a = SQRT5 * r;
        gc = a < 1e100 ? (5.0 / 3.0) * (1.0 + a) / (1.0 + a + a * a / 3.0) : 5.0 / a;
        break;
    case GRAM_RATIONAL_QUADRATIC: {
        double u = t / (2.0 * L->alpha);
        gc = 1.0 / (1.0 + u);
        g[ard ? L->n_scale : 1] = isfinite(u) ? L->alpha * rq_alpha_term(u, log1p(u)) : 0.0;
        break;
    }
    case GRAM_CAUCHY: gc = 2.0 / (1.0 + t); break;
    default: break;
    }
    int64_t n = ard ? L->n_scale : 1;
    for (int64_t d = 0; d < n; d++) g[d] = (gc == 0.0 || !isfinite(g[d])) ? 0.0 : gc * g[d];
    return lv;
}

/* log(e^a + e^b) and the weights e^(a - m), e^(b - m) of its derivative in a and b: both 0 where
 * both terms are 0 (m = -inf), the infinite term's 1 where one overflowed (m = +inf). */
static inline double log_add(double a, double b, double *wa, double *wb)
{
    double m = a > b ? a : b;
    if (isinf(m)) {
        *wa = a == m ? 1.0 : 0.0;
        *wb = b == m ? 1.0 : 0.0;
        if (m < 0) *wa = *wb = 0.0;
        return m;
    }
    double r = m + log1p(exp(-fabs(a - b)));
    *wa = exp(a - r);
    *wb = exp(b - r);
    return r;
}

double gram__kernel_eval_grad(const gram_kernel *k, int64_t D, const double *y, const double *x,
                              int same, double *grad, double *vs, int64_t *hs)
{
    /* Stack of (value, first hyperparameter of the entry's range); hc is one past the last
     * hyperparameter of the ops run so far, so the top entry's range is [h0, hc). */
    int top = 0;
    int64_t hc = 0;
    vs[0] = 0.0; /* k has at least one op; this only quiets -Wmaybe-uninitialized */
    for (int i = 0; i < k->n_ops; i++) {
        const gram__op *op = &k->ops[i];
        const int lgm = (k->op_flags[i] & GRAM__OPF_LOG) != 0; /* this op's entry is a log */
        switch (op->kind) {
        case GRAM_OP_LEAF: {
            const gram__leaf *L = &k->leaves[op->leaf];
            vs[top] = lgm ? leaf_log_eval(L, D, y, x, same, grad ? grad + L->hyper0 : NULL)
                          : leaf_eval(L, D, y, x, same, grad ? grad + L->hyper0 : NULL);
            hs[top++] = L->hyper0;
            hc = L->hyper0 + gram__leaf_n_hyper(L);
            break;
        }
        case GRAM_OP_ADD:
            top--;
            if (lgm) {
                double wa, wb;
                vs[top - 1] = log_add(vs[top - 1], vs[top], &wa, &wb);
                if (grad) {
                    for (int64_t h = hs[top - 1]; h < hs[top]; h++) grad[h] = mul0(grad[h], wa);
                    for (int64_t h = hs[top]; h < hc; h++) grad[h] = mul0(grad[h], wb);
                }
                break;
            }
            vs[top - 1] += vs[top];
            break;
        case GRAM_OP_MUL: {
            top--;
            double a = vs[top - 1], b = vs[top];
            if (lgm) { /* log a + log b, the logs' derivatives as they are; log 0 + anything is log 0 */
                vs[top - 1] = a == -INFINITY || b == -INFINITY ? -INFINITY : a + b;
                break;
            }
            if (grad) {
                for (int64_t h = hs[top - 1]; h < hs[top]; h++) grad[h] = mul0(grad[h], b);
                for (int64_t h = hs[top]; h < hc; h++) grad[h] = mul0(grad[h], a);
            }
            vs[top - 1] = mul0(a, b);
            break;
        }
        case GRAM_OP_SCALE: {
            double a = vs[top - 1];
            if (lgm) { /* log c + log a; ∂/∂log c = 1. A zero scale's operand is a value: log 0 */
                if (grad)
                    for (int64_t h = hs[top - 1]; h < hc; h++) grad[h] = op->c == 0.0 ? 0.0 : grad[h];
                if (grad && op->hyper >= 0) grad[op->hyper] = 1.0;
                if (op->hyper >= 0) hc = op->hyper + 1;
                vs[top - 1] = op->c == 0.0 ? -INFINITY : a + log(op->c);
                break;
            }
            if (grad) {
                for (int64_t h = hs[top - 1]; h < hc; h++) grad[h] = mul0(grad[h], op->c);
                if (op->hyper >= 0) grad[op->hyper] = op->c * a; /* ∂(c·a)/∂log c */
            }
            if (op->hyper >= 0) hc = op->hyper + 1;
            vs[top - 1] = mul0(op->c, a);
            break;
        }
        case GRAM_OP_POW: {
            double a = vs[top - 1], d, v;
            const int alg = (k->op_flags[i - 1] & GRAM__OPF_LOG) != 0; /* the operand is a log */
            if (lgm && alg) v = op->c * a, d = op->c;                  /* log a^p = p·log a */
            else if (lgm) v = op->c * log(fabs(a)), d = op->c / a;     /* p·log|a| of a value */
            else if (alg) v = exp(op->c * a), d = op->c * v;           /* exp(p·log a) */
            else v = pow(a, op->c), d = grad ? pow_slope(a, op->c) : 0.0;
            if (grad)
                for (int64_t h = hs[top - 1]; h < hc; h++) grad[h] = mul0(grad[h], d);
            vs[top - 1] = v;
            break;
        }
        }
    }
    return vs[0];
}

gram_status gram_kernel_eval(gram_context *ctx, const gram_kernel *k, int64_t D, const double *y,
                             const double *x, int same, double *value, double *grad)
{
    gram__clear(ctx);
    if (!k) return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_eval: kernel is NULL");
    if (!value) return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_eval: value is NULL");
    if (D < 0) return gram__fail(ctx, GRAM_ESHAPE, "gram_kernel_eval: D must be >= 0, got %lld", (long long)D);
    if (D > 0 && (!y || !x))
        return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_eval: %s is NULL", !y ? "y" : "x");
    if (k->dim && D != k->dim)
        return gram__fail(ctx, GRAM_ESHAPE,
                          "gram_kernel_eval: the kernel has %lld ARD lengthscales but D = %lld",
                          (long long)k->dim, (long long)D);
    for (int64_t d = 0; d < D; d++) {
        if (!isfinite(y[d]))
            return gram__fail(ctx, GRAM_ENONFINITE, "gram_kernel_eval: y[%lld] is %g", (long long)d, y[d]);
        if (!isfinite(x[d]))
            return gram__fail(ctx, GRAM_ENONFINITE, "gram_kernel_eval: x[%lld] is %g", (long long)d, x[d]);
    }

    enum { SMALL = 32 };
    double vs_small[SMALL];
    int64_t hs_small[SMALL];
    double *vs = vs_small;
    int64_t *hs = hs_small;
    if (k->stack_depth > SMALL) {
        vs = malloc((size_t)k->stack_depth * sizeof *vs);
        hs = malloc((size_t)k->stack_depth * sizeof *hs);
        if (!vs || !hs) {
            free(vs);
            free(hs);
            return gram__fail(ctx, GRAM_ENOMEM, "gram_kernel_eval: out of memory");
        }
    }
    *value = gram__kernel_eval_grad(k, D, y, x, same, grad, vs, hs);
    if (vs != vs_small) {
        free(vs);
        free(hs);
    }
    return GRAM_OK;
}

/* ---- blocks of pairs: forward values, backward adjoints ------------------------------------- */

gram_status gram__grad_ws_init(gram__grad_ws *ws, const gram_kernel *k, int B,
                               void (*vexp)(int64_t n, const double *x, double *y))
{
    memset(ws, 0, sizeof *ws);
    ws->vexp = vexp;
    int n = k->n_ops;
    int64_t P = k->n_hyper;
    int64_t nh_max = 1;
    for (int l = 0; l < k->n_leaves; l++) {
        int64_t h = gram__leaf_n_hyper(&k->leaves[l]);
        if (h > nh_max) nh_max = h;
    }
    ws->B = B;
    ws->vals = malloc(sizeof(double) * (size_t)(2 * n + P + nh_max + 2) * (size_t)B);
    ws->left = malloc(sizeof(int) * (size_t)(2 * n));
    if (!ws->vals || !ws->left) {
        gram__grad_ws_free(ws);
        return GRAM_ENOMEM;
    }
    ws->adj = ws->vals + (size_t)n * (size_t)B;
    ws->lg = ws->adj + (size_t)n * (size_t)B;
    ws->gl = ws->lg + (size_t)P * (size_t)B;
    ws->tmp = ws->gl + (size_t)nh_max * (size_t)B;
    ws->right = ws->left + n;
    /* start[i] (first op of the subtree ending at i) gives each binary op's left child */
    int *start = ws->right; /* reused: filled before right is */
    for (int i = 0; i < n; i++) {
        const gram__op *op = &k->ops[i];
        if (op->kind == GRAM_OP_LEAF) start[i] = i;
        else if (op->kind == GRAM_OP_SCALE || op->kind == GRAM_OP_POW) start[i] = start[i - 1];
        else start[i] = start[start[i - 1] - 1];
    }
    for (int i = 0; i < n; i++) {
        const gram__op *op = &k->ops[i];
        ws->left[i] = op->kind == GRAM_OP_ADD || op->kind == GRAM_OP_MUL ? start[i - 1] - 1
                      : op->kind == GRAM_OP_SCALE || op->kind == GRAM_OP_POW ? i - 1
                                                                           : -1;
    }
    for (int i = 0; i < n; i++) ws->right[i] = k->ops[i].kind == GRAM_OP_ADD || k->ops[i].kind == GRAM_OP_MUL ? i - 1 : -1;
    return GRAM_OK;
}

void gram__grad_ws_free(gram__grad_ws *ws)
{
    free(ws->vals);
    free(ws->left);
    memset(ws, 0, sizeof *ws);
}

/* sin(π r) and cos(π r) for r ≥ 0 (finite), branch-free so the block loop below vectorises: with
 * k = round(2r) and the reduced x = π (r - k/2), |x| ≤ π/4, both from Taylor polynomials through
 * x¹⁵ / x¹⁶ (truncation below 1e-16 there), then rotated by the quadrant k mod 4. r - k/2 is exact
 * up to half an ulp of r, so the absolute error is a few ulps of r·π: ample for the derivatives it
 * serves (the kernel values themselves come from the engine, with libm's sin). */
static inline void sincos_pi(double r, double *s_out, double *c_out)
{
    double k = nearbyint(2.0 * r), x = PI * (r - 0.5 * k), x2 = x * x;
    double s = x * (1.0 + x2 * (-1.0 / 6 + x2 * (1.0 / 120 + x2 * (-1.0 / 5040 + x2 * (1.0 / 362880 +
               x2 * (-1.0 / 39916800 + x2 * (1.0 / 6227020800 + x2 * (-1.0 / 1307674368000))))))));
    double c = 1.0 + x2 * (-0.5 + x2 * (1.0 / 24 + x2 * (-1.0 / 720 + x2 * (1.0 / 40320 + x2 * (-1.0 / 3628800 +
               x2 * (1.0 / 479001600 + x2 * (-1.0 / 87178291200 + x2 * (1.0 / 20922789888000))))))));
    long q = (long)k & 3;
    double ss = (q & 1) ? c : s, cc = (q & 1) ? s : c;
    *s_out = (q & 2) ? -ss : ss;
    *c_out = ((q + 1) & 2) ? -cc : cc;
}

/* A leaf a block of B pairs at once: constant and white leaves, and the radial families whose
 * transcendental calls can share the engine's SIMD exp (gaussian, laplacian, Matérn, rational
 * quadratic, periodic). Writes the values to v and the leaf's derivatives to lg (rows hyper0..,
 * stride WB); returns 0 (nothing written) for other leaves, which go pair by pair through
 * leaf_eval. The formulas are leaf_eval's. */
static int leaf_block(const gram__leaf *L, const gram__grad_ws *ws, int64_t D, const double *y,
                      const double *X, int64_t ldx, int B, int same_j, double *v)
{
    gram_family f = L->family;
    int WB = ws->B, ard = L->n_scale > 1;
    double *lg = ws->lg + (size_t)L->hyper0 * WB, *t = v, *e = ws->tmp;
    if (L->structure == GRAM_STRUCT_CONST) {
        double v0 = gram__leaf_const(L, 0), v1 = gram__leaf_const(L, 1);
        int has = f == GRAM_CONSTANT || L->noise > 0.0;
        for (int j = 0; j < B; j++) v[j] = v0;
        if (same_j >= 0 && same_j < B) v[same_j] = v1;
        if (has) memcpy(lg, v, sizeof(double) * (size_t)B); /* ∂c/∂log c = c */
        return 1;
    }
    if (!ws->vexp || L->structure != GRAM_STRUCT_SQDIST ||
        !(f == GRAM_GAUSSIAN || f == GRAM_LAPLACIAN || f == GRAM_MATERN12 || f == GRAM_EXPONENTIAL ||
          f == GRAM_MATERN32 || f == GRAM_MATERN52 || f == GRAM_RATIONAL_QUADRATIC || f == GRAM_PERIODIC))
        return 0;
    const double *is = L->inv_scale;
    for (int j = 0; j < B; j++) {
        const double *x = X + j * ldx;
        double tj = 0.0;
        for (int64_t d = 0; d < D; d++) {
            double z = (y[d] - x[d]) * is[ard ? d : 0], td = z * z;
            tj += td;
            if (ard) lg[d * WB + j] = td;
        }
        t[j] = tj;
        if (!ard) lg[j] = tj;
    }
    int64_t n = ard ? L->n_scale : 1;
    if (f == GRAM_PERIODIC) {
        /* t = (ρ/p)²: θ0 = log ℓ, θ1 = log p; one sin and one cos per pair, exp by blocks */
        double l2 = L->lengthscale[0] * L->lengthscale[0], il2 = 1.0 / l2;
        double *sn = lg, *sc = lg + WB; /* sin², and 4π r sin cos / ℓ², until the exp is known */
        for (int j = 0; j < B; j++) {
            double r = sqrt(t[j]), s1 = 0.0, c1 = 1.0;
            if (r < 1e15) sincos_pi(r, &s1, &c1); /* beyond, r is an even integer or overflowed */
            e[j] = -2.0 * s1 * s1 / l2;
            sn[j] = 4.0 * s1 * s1 * il2;
            sc[j] = isfinite(r) ? 4.0 * PI * r * il2 * s1 * c1 : 0.0;
        }
        ws->vexp(B, e, v);
        for (int j = 0; j < B; j++) {
            sn[j] *= v[j];
            sc[j] *= v[j];
        }
        return 1;
    }
    double c = f == GRAM_MATERN32 ? SQRT3 : f == GRAM_MATERN52 ? SQRT5 : 1.0;
    double *lp = ws->tmp + WB; /* rational quadratic: log1p(u) */
    if (f == GRAM_GAUSSIAN)
        for (int j = 0; j < B; j++) e[j] = -0.5 * t[j];
    else if (f == GRAM_RATIONAL_QUADRATIC)
        for (int j = 0; j < B; j++) {
            lp[j] = log1p(t[j] / (2.0 * L->alpha));
            e[j] = -L->alpha * lp[j];
        }
    else
        for (int j = 0; j < B; j++) e[j] = -c * sqrt(t[j]);
    ws->vexp(B, e, e);
    for (int j = 0; j < B; j++) {
        double r = sqrt(t[j]), a = c * r, ex = e[j], val, gc;
        switch (f) {
        case GRAM_GAUSSIAN: val = gc = ex; break;
        case GRAM_MATERN32: val = (1.0 + a) * ex; gc = 3.0 * ex; break;
        case GRAM_MATERN52: val = (1.0 + a + a * a / 3.0) * ex; gc = (5.0 / 3.0) * (1.0 + a) * ex; break;
        case GRAM_RATIONAL_QUADRATIC: {
            double u = t[j] / (2.0 * L->alpha);
            val = ex;
            gc = ex / (1.0 + u);
            lg[(ard ? L->n_scale : 1) * WB + j] = isfinite(u) ? L->alpha * ex * rq_alpha_term(u, lp[j]) : 0.0;
            break;
        }
        default: val = ex; gc = r > 0.0 ? ex / r : 0.0; break; /* laplacian, matern12, exponential */
        }
        v[j] = val;
        for (int64_t d = 0; d < n; d++) {
            double g = lg[d * WB + j];
            lg[d * WB + j] = (gc == 0.0 || !isfinite(g)) ? 0.0 : gc * g;
        }
    }
    return 1;
}

/* The forward pass over a block: vals (n_ops × WB) and each leaf's derivatives in lg. */
static void forward(const gram_kernel *k, gram__grad_ws *ws, int64_t D, const double *y, const double *X,
                    int64_t ldx, int B, int same_j)
{
    int n = k->n_ops, WB = ws->B;
    double *vals = ws->vals, *lg = ws->lg, *gl = ws->gl;
    for (int o = 0; o < n; o++) {
        const gram__op *op = &k->ops[o];
        double *v = vals + (size_t)o * WB;
        const int lgm = (k->op_flags[o] & GRAM__OPF_LOG) != 0; /* vals[o] is a log (kernel.h) */
        if (op->kind == GRAM_OP_LEAF) {
            const gram__leaf *L = &k->leaves[op->leaf];
            if (!lgm && leaf_block(L, ws, D, y, X, ldx, B, same_j, v)) continue;
            int64_t nh = gram__leaf_n_hyper(L), h0 = L->hyper0;
            for (int j = 0; j < B; j++) {
                v[j] = lgm ? leaf_log_eval(L, D, y, X + j * ldx, j == same_j, gl)
                           : leaf_eval(L, D, y, X + j * ldx, j == same_j, gl);
                for (int64_t h = 0; h < nh; h++) lg[(size_t)(h0 + h) * WB + j] = gl[h];
            }
        } else if (op->kind == GRAM_OP_SCALE) {
            const double *a = vals + (size_t)(o - 1) * WB;
            if (lgm) {
                const double lc = op->c > 0.0 ? log(op->c) : 0.0;
                for (int j = 0; j < B; j++) v[j] = op->c == 0.0 ? -INFINITY : a[j] + lc;
            } else
                for (int j = 0; j < B; j++) v[j] = mul0(op->c, a[j]);
        } else if (op->kind == GRAM_OP_POW) {
            const double *a = vals + (size_t)(o - 1) * WB;
            const int alg = (k->op_flags[o - 1] & GRAM__OPF_LOG) != 0;
            if (lgm && alg)
                for (int j = 0; j < B; j++) v[j] = op->c * a[j];
            else if (lgm)
                for (int j = 0; j < B; j++) v[j] = op->c * log(fabs(a[j]));
            else if (alg)
                for (int j = 0; j < B; j++) v[j] = exp(op->c * a[j]);
            else
                for (int j = 0; j < B; j++) v[j] = pow(a[j], op->c);
        } else {
            const double *a = vals + (size_t)ws->left[o] * WB, *b = vals + (size_t)ws->right[o] * WB;
            double wa, wb;
            if (lgm && op->kind == GRAM_OP_ADD)
                for (int j = 0; j < B; j++) v[j] = log_add(a[j], b[j], &wa, &wb);
            else if (lgm)
                for (int j = 0; j < B; j++) v[j] = a[j] == -INFINITY || b[j] == -INFINITY ? -INFINITY : a[j] + b[j];
            else if (op->kind == GRAM_OP_ADD)
                for (int j = 0; j < B; j++) v[j] = a[j] + b[j];
            else
                for (int j = 0; j < B; j++) v[j] = mul0(a[j], b[j]);
        }
    }
}

/* The backward pass: adjoints ∂k/∂node from the root's (w, or 1 when w is NULL) down, and per
 * hyperparameter either acc[h] += Σ_j adjoint · ∂node/∂θ_h (G NULL) or, pair by pair,
 * G[j·ldg + h] = adjoint · ∂node/∂θ_h (every hyperparameter has exactly one owner: a leaf or a
 * scale, so each entry is written once). */
static void backward(const gram_kernel *k, gram__grad_ws *ws, int B, const double *w, double *acc, double *G,
                     int64_t ldg)
{
    int n = k->n_ops, WB = ws->B;
    double *vals = ws->vals, *adj = ws->adj, *lg = ws->lg;
    double *root = adj + (size_t)(n - 1) * WB;
    if (w) memcpy(root, w, sizeof(double) * (size_t)B);
    else
        for (int j = 0; j < B; j++) root[j] = 1.0;
    for (int o = n - 1; o >= 0; o--) {
        const gram__op *op = &k->ops[o];
        const double *ad = adj + (size_t)o * WB;
        if (op->kind == GRAM_OP_LEAF) {
            const gram__leaf *L = &k->leaves[op->leaf];
            int64_t nh = gram__leaf_n_hyper(L), h0 = L->hyper0;
            for (int64_t h = 0; h < nh; h++) {
                const double *g = lg + (size_t)(h0 + h) * WB;
                if (G) {
                    for (int j = 0; j < B; j++) G[j * ldg + h0 + h] = mul0(ad[j], g[j]);
                    continue;
                }
                double s = 0.0;
                for (int j = 0; j < B; j++) s += mul0(ad[j], g[j]);
                acc[h0 + h] += s;
            }
        } else if (op->kind == GRAM_OP_POW) {
            double *ac = adj + (size_t)(o - 1) * WB;
            const double *a = vals + (size_t)(o - 1) * WB, *v = vals + (size_t)o * WB;
            const int lgm = (k->op_flags[o] & GRAM__OPF_LOG) != 0, alg = (k->op_flags[o - 1] & GRAM__OPF_LOG) != 0;
            if (lgm && alg) /* p·log a */
                for (int j = 0; j < B; j++) ac[j] = ad[j] * op->c;
            else if (lgm) /* p·log|a| */
                for (int j = 0; j < B; j++) ac[j] = mul0(ad[j], op->c / a[j]);
            else if (alg) /* exp(p·log a): ∂/∂log a = p·a^p */
                for (int j = 0; j < B; j++) ac[j] = mul0(ad[j], op->c * v[j]);
            else
                for (int j = 0; j < B; j++) ac[j] = mul0(ad[j], pow_slope(a[j], op->c));
        } else if (op->kind == GRAM_OP_SCALE) {
            double *ac = adj + (size_t)(o - 1) * WB;
            const int lgm = (k->op_flags[o] & GRAM__OPF_LOG) != 0;
            /* log space: log c + log a, so ∂/∂log a = 1 and ∂/∂log c = 1 (a zero scale: log 0) */
            for (int j = 0; j < B; j++) ac[j] = lgm ? (op->c == 0.0 ? 0.0 : ad[j]) : mul0(ad[j], op->c);
            if (op->hyper >= 0) {
                const double *v = lgm ? NULL : vals + (size_t)o * WB;
                if (lgm) {
                    if (G) {
                        for (int j = 0; j < B; j++) G[j * ldg + op->hyper] = ad[j];
                        continue;
                    }
                    double s = 0.0;
                    for (int j = 0; j < B; j++) s += ad[j];
                    acc[op->hyper] += s;
                    continue;
                }
                if (G) {
                    for (int j = 0; j < B; j++) G[j * ldg + op->hyper] = mul0(ad[j], v[j]);
                    continue;
                }
                double s = 0.0;
                for (int j = 0; j < B; j++) s += mul0(ad[j], v[j]);
                acc[op->hyper] += s;
            }
        } else {
            int l = ws->left[o], r = ws->right[o];
            double *al = adj + (size_t)l * WB, *ar = adj + (size_t)r * WB;
            const int lgm = (k->op_flags[o] & GRAM__OPF_LOG) != 0;
            if (lgm && op->kind == GRAM_OP_ADD) { /* log(e^a + e^b): weights e^(a - v), e^(b - v) */
                const double *vl = vals + (size_t)l * WB, *vr = vals + (size_t)r * WB;
                for (int j = 0; j < B; j++) {
                    double wa, wb;
                    log_add(vl[j], vr[j], &wa, &wb);
                    al[j] = mul0(ad[j], wa);
                    ar[j] = mul0(ad[j], wb);
                }
            } else if (op->kind == GRAM_OP_ADD || lgm) { /* a + b, or log a + log b */
                memcpy(al, ad, sizeof(double) * (size_t)B);
                memcpy(ar, ad, sizeof(double) * (size_t)B);
            } else {
                const double *vl = vals + (size_t)l * WB, *vr = vals + (size_t)r * WB;
                for (int j = 0; j < B; j++) {
                    al[j] = mul0(ad[j], vr[j]);
                    ar[j] = mul0(ad[j], vl[j]);
                }
            }
        }
    }
}

void gram__kernel_grad_block(const gram_kernel *k, gram__grad_ws *ws, int64_t D, const double *y,
                             const double *X, int64_t ldx, int B, int same_j, const double *w,
                             double *acc)
{
    forward(k, ws, D, y, X, ldx, B, same_j);
    backward(k, ws, B, w, acc, NULL, 0);
}

void gram__kernel_grad_pairs(const gram_kernel *k, gram__grad_ws *ws, int64_t D, const double *y,
                             const double *X, int64_t ldx, int B, int same_j, double *G, int64_t ldg)
{
    forward(k, ws, D, y, X, ldx, B, same_j);
    backward(k, ws, B, NULL, NULL, G, ldg);
}
