/* gram_kernel_matrix_grad: the Gram block and its gradient tensor in scikit-learn's (M, N, P)
 * layout, against a reference written here in long double: each family's value and its analytic
 * derivatives in the log-hyperparameters (from the definitions in gram.h, differentiated by hand,
 * no finite differences), combined through sums, products and scales by the product rule. Also:
 * the block equals gram_kernel_matrix bit for bit, the bits do not depend on the thread count,
 * float32 inputs, strided views, the symmetric call's white noise, and every error path. */
#include "check.h"
#include "gram.h"
#include "arccos_ref.h"
#include "matern_ref.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;
#define PI_L 3.141592653589793238462643383279502884L
#define MAXP 24

static gram_context *ctx;

/* ---- the reference --------------------------------------------------------------------------- */

/* One leaf: the family, its lengthscales (nls = 1: isotropic) and parameters as in gram.h. */
typedef struct leaf {
    gram_family f;
    int nls;
    double ls[8];
    double p0, p1, p2; /* alpha | period | sigma0 | (degree, gamma, coef0) | value | noise | nu |
                        * (gamma, coef0) */
} leaf;

/* The hyperparameters a leaf has: its lengthscales, then its positive non-integer parameters. */
static int leaf_nh(const leaf *L)
{
    int n = L->f == GRAM_CONSTANT || L->f == GRAM_WHITE ? 0 : L->nls;
    switch (L->f) {
    case GRAM_RATIONAL_QUADRATIC:
    case GRAM_PERIODIC:
    case GRAM_CONSTANT: return n + 1;
    case GRAM_LINEAR: return n + (L->p0 > 0);
    case GRAM_POLYNOMIAL: return n + 1 + (L->p2 > 0);
    case GRAM_SIGMOID: return n + 1 + (L->p1 > 0);
    case GRAM_WHITE: return n + (L->p0 > 0);
    default: return n;
    }
}

/* Value of the leaf at (y, x) and its derivatives g[0 .. leaf_nh) in the log-hyperparameters,
 * and in *mag a magnitude for the rounding error of the derivatives (the same derivatives with
 * every term made non-negative: dot products cancel where s ≈ 0). */
static ld leaf_ref(const leaf *L, int D, const double *y, const double *x, int same, ld *g, ld *mag)
{
    int ard = L->nls > 1;
    ld z2[8], az[8], u[8], v[8], t = 0, l1 = 0, rho2 = 0, s = 0, xx = 0, yy = 0, sa = 0;
    for (int d = 0; d < D; d++) {
        ld l = L->nls ? L->ls[ard ? d : 0] : 1, dy = (ld)y[d] - (ld)x[d];
        z2[d] = (dy / l) * (dy / l);
        az[d] = fabsl(dy) / l;
        u[d] = (ld)y[d] / l;
        v[d] = (ld)x[d] / l;
        t += z2[d];
        l1 += az[d];
        rho2 += dy * dy;
        s += u[d] * v[d];
        sa += fabsl(u[d] * v[d]);
        xx += v[d] * v[d];
        yy += u[d] * u[d];
    }
    ld r = sqrtl(t), f = 0, gc = 0; /* radial: ∂k/∂log ℓ_d = gc · z_d² */
    *mag = 0;
    int nls = L->nls;
    switch (L->f) {
    case GRAM_GAUSSIAN: f = expl(-t / 2); gc = f; break;
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: f = expl(-r); gc = r > 0 ? f / r : 0; break;
    case GRAM_MATERN32: f = (1 + sqrtl(3.0L) * r) * expl(-sqrtl(3.0L) * r); gc = 3 * expl(-sqrtl(3.0L) * r); break;
    case GRAM_MATERN52:
        f = (1 + sqrtl(5.0L) * r + 5 * t / 3) * expl(-sqrtl(5.0L) * r);
        gc = (ld)5 / 3 * (1 + sqrtl(5.0L) * r) * expl(-sqrtl(5.0L) * r);
        break;
    case GRAM_RATIONAL_QUADRATIC: {
        ld a = L->p0, w = t / (2 * a);
        f = powl(1 + w, -a);
        gc = f / (1 + w);
        g[nls] = a * f * (w / (1 + w) - log1pl(w)); /* α ∂f/∂α */
        *mag = fabsl(g[nls]) + a * f * (w / (1 + w) + log1pl(w));
        break;
    }
    case GRAM_CAUCHY: f = 1 / (1 + t); gc = 2 * f * f; break;
    case GRAM_MATERN: {
        ld z = sqrtl(2 * (ld)L->p0 * t);
        f = t > 0 ? expl(matern_ref_log_value(L->p0, z)) : 1;
        gc = t > 0 ? expl(matern_ref_log_dlogl(L->p0, z)) / t : 0; /* ∂k/∂log ℓ_d = G z_d²/t */
        break;
    }
    case GRAM_PERIODIC: {
        ld l = L->ls[0], p = L->p0, q = PI_L * sqrtl(rho2) / p, sn = sinl(q), cs = cosl(q);
        f = expl(-2 * sn * sn / (l * l));
        g[0] = 4 * f * sn * sn / (l * l);
        g[1] = 4 * f * q * sn * cs / (l * l); /* ∂/∂log p: q = πρ/p, ∂q/∂log p = -q */
        /* q itself carries a relative rounding error: sin q and cos q are then off by q·ε */
        *mag = fabsl(g[0]) + fabsl(g[1]) + 8 * f * q * (q + 1) / (l * l);
        return f;
    }
    case GRAM_TOPHAT: f = r < 1; gc = 0; break;
    case GRAM_EPANECHNIKOV: f = r < 1 ? 1 - t : 0; gc = r < 1 ? 2 : 0; break;
    case GRAM_TRIANGULAR: f = r < 1 ? 1 - r : 0; gc = r > 0 && r < 1 ? 1 / r : 0; break;
    case GRAM_COSINE_WINDOW:
        f = r < 1 ? cosl(PI_L * r / 2) : 0;
        gc = r > 0 && r < 1 ? PI_L / 2 * sinl(PI_L * r / 2) / r : 0;
        break;
    case GRAM_NEG_L2: f = -r; gc = r > 0 ? 1 / r : 0; break;
    case GRAM_LAPLACIAN_L1:
    case GRAM_NEG_L1: {
        f = L->f == GRAM_NEG_L1 ? -l1 : expl(-l1);
        ld c = L->f == GRAM_NEG_L1 ? 1 : f; /* ∂t/∂log ℓ_d = -|z_d|, ∂f/∂t = -c */
        if (ard)
            for (int d = 0; d < D; d++) g[d] = c * az[d];
        else
            g[0] = c * l1;
        for (int d = 0; d < (ard ? D : 1); d++) *mag += fabsl(g[d]);
        return f;
    }
    case GRAM_LINEAR:
    case GRAM_POLYNOMIAL:
    case GRAM_SIGMOID:
    case GRAM_COSINE: {
        /* ∂u_d/∂log ℓ_d = -u_d: ∂s = -2 u_d v_d, ∂|u|² = -2 u_d², ∂|v|² = -2 v_d² */
        ld A = 0, Aa = 0, B = 0, C = 0;
        if (L->f == GRAM_LINEAR) {
            f = (ld)L->p0 * L->p0 + s;
            A = Aa = 1;
            if (L->p0 > 0) g[nls] = 2 * (ld)L->p0 * L->p0;
        } else if (L->f == GRAM_POLYNOMIAL) {
            int deg = (int)L->p0;
            ld b = (ld)L->p1 * s + L->p2, ba = (ld)L->p1 * sa + L->p2;
            f = powl(b, deg);
            A = deg * powl(b, deg - 1) * L->p1;
            Aa = deg * powl(ba, deg - 1) * L->p1;
            g[nls] = A * s;
            if (L->p2 > 0) g[nls + 1] = deg * powl(b, deg - 1) * L->p2;
            *mag += Aa * sa + (L->p2 > 0 ? deg * powl(ba, deg - 1) * L->p2 : 0);
        } else if (L->f == GRAM_SIGMOID) {
            ld b = (ld)L->p0 * s + L->p1, ch = coshl(b);
            f = tanhl(b);
            A = Aa = L->p0 / (ch * ch);
            g[nls] = A * s;
            if (L->p1 > 0) g[nls + 1] = L->p1 / (ch * ch);
            *mag += Aa * sa + (L->p1 > 0 ? fabsl(g[nls + 1]) : 0) + fabsl(f);
        } else if (xx > 0 && yy > 0) {
            f = s / sqrtl(xx * yy);
            A = Aa = 1 / sqrtl(xx * yy);
            B = -f / (2 * xx);
            C = -f / (2 * yy);
        }
        if (ard)
            for (int d = 0; d < D; d++) g[d] = -2 * (A * u[d] * v[d] + B * v[d] * v[d] + C * u[d] * u[d]);
        else
            g[0] = -2 * (A * s + B * xx + C * yy);
        *mag += 2 * (Aa * sa + fabsl(B) * xx + fabsl(C) * yy) * (ard ? 1 : 1);
        return f;
    }
    case GRAM_SOFTMAX: /* ∂exp(s)/∂log ℓ_d = -2 u_d v_d exp(s) */
        f = expl(s);
        for (int d = 0; d < (ard ? D : 1); d++) g[d] = -2 * f * (ard ? u[d] * v[d] : s);
        *mag = 2 * f * sa;
        return f;
    case GRAM_ARCCOS: {
        /* k = (xx yy)^(n/2) J_n(θ)/π; by θ's derivative: J_0' = -1, J_1' = -(π - θ) sin θ,
         * J_2' = -4 sin θ J_1, ∂θ = -∂cos θ / sin θ, cos θ = s/√(xx yy) */
        int n = (int)L->p0;
        f = arccos_ref_value(n, s, xx, yy);
        if (xx <= 0 || yy <= 0) return f;
        ld c = s / sqrtl(xx * yy), sn = sqrtl(fmaxl(0, 1 - c * c)), phi = acosl(-c);
        ld m = n == 0 ? 1 : n == 1 ? sqrtl(xx * yy) : xx * yy;
        ld dJ = n == 0 ? -1 : n == 1 ? -phi * sn : -4 * sn * arccos_j1_ld(phi);
        for (int d = 0; d < (ard ? D : 1); d++) {
            ld ds = -2 * (ard ? u[d] * v[d] : s), dxx = -2 * (ard ? v[d] * v[d] : xx), dyy = -2 * (ard ? u[d] * u[d] : yy);
            ld dc = ds / sqrtl(xx * yy) - c / 2 * (dxx / xx + dyy / yy);
            ld dth = sn > 0 ? -dc / sn : 0;
            g[d] = f * n / 2 * (dxx / xx + dyy / yy) + m / PI_L * dJ * dth;
            *mag += fabsl(f * n / 2 * (dxx / xx + dyy / yy)) + fabsl(m / PI_L * dJ) * (2 * sa / sqrtl(xx * yy) + 2) / (sn > 1e-3 ? sn : 1e-3);
        }
        return f;
    }
    case GRAM_CONSTANT: g[0] = L->p0; return L->p0;
    case GRAM_WHITE:
        if (L->p0 > 0) g[0] = same ? L->p0 : 0;
        return same ? L->p0 : 0;
    default: return NAN;
    }
    /* radial in r² */
    if (ard)
        for (int d = 0; d < D; d++) g[d] = gc * z2[d];
    else
        g[0] = gc * t;
    for (int d = 0; d < (ard ? D : 1); d++) *mag += fabsl(g[d]);
    *mag += fabsl(f);
    return f;
}

/* A composite: a postfix program over leaves, as gram.h documents it. Scale ops with c > 0 have
 * a hyperparameter right after those of their operand. */
enum { LEAF, ADD, MUL, SCALE, POW };
typedef struct rop {
    int kind;
    int leaf; /* LEAF: index */
    double c; /* SCALE */
} rop;

typedef struct rkernel {
    const char *spec;
    int n_ops;
    rop ops[10];
    leaf leaves[4];
} rkernel;

typedef struct entry {
    ld v, mag;
    ld g[MAXP], gm[MAXP]; /* derivative and its magnitude */
    int h0, h1;           /* the hyperparameter range of the sub-expression */
} entry;

/* Value and gradient of the composite; returns the number of hyperparameters. */
static int ref_eval(const rkernel *K, int D, const double *y, const double *x, int same, ld *val, ld *g, ld *gm)
{
    entry st[8];
    int sp = 0, nh = 0;
    for (int o = 0; o < K->n_ops; o++) {
        const rop *op = &K->ops[o];
        if (op->kind == LEAF) {
            entry *e = &st[sp++];
            memset(e, 0, sizeof *e);
            const leaf *L = &K->leaves[op->leaf];
            ld lg[MAXP] = {0}, mag = 0;
            e->v = leaf_ref(L, D, y, x, same, lg, &mag);
            e->h0 = nh;
            int n = leaf_nh(L);
            for (int h = 0; h < n; h++) {
                e->g[nh + h] = lg[h];
                e->gm[nh + h] = fabsl(lg[h]) + mag;
            }
            e->mag = fabsl(e->v) + mag;
            nh += n;
            e->h1 = nh;
        } else if (op->kind == POW) { /* ∂(a^p) = p a^(p-1) ∂a */
            entry *e = &st[sp - 1];
            ld d = op->c * powl(e->v, op->c - 1), dm = op->c * powl(e->mag, op->c - 1);
            for (int h = e->h0; h < e->h1; h++) {
                e->g[h] *= d;
                e->gm[h] *= dm;
            }
            e->v = powl(e->v, op->c);
            e->mag = powl(e->mag, op->c);
        } else if (op->kind == SCALE) {
            entry *e = &st[sp - 1];
            for (int h = e->h0; h < e->h1; h++) {
                e->g[h] *= op->c;
                e->gm[h] *= fabsl(op->c);
            }
            e->v *= op->c;
            e->mag *= fabsl(op->c);
            if (op->c > 0) {
                e->g[nh] = e->v;
                e->gm[nh] = e->mag;
                e->h1 = ++nh;
            }
        } else {
            entry *a = &st[sp - 2], *b = &st[sp - 1];
            for (int h = b->h0; h < b->h1; h++) {
                a->g[h] = op->kind == ADD ? b->g[h] : b->g[h] * a->v;
                a->gm[h] = op->kind == ADD ? b->gm[h] : b->gm[h] * a->mag;
            }
            if (op->kind == MUL)
                for (int h = a->h0; h < a->h1; h++) {
                    a->g[h] *= b->v;
                    a->gm[h] *= b->mag;
                }
            a->v = op->kind == ADD ? a->v + b->v : a->v * b->v;
            a->mag = op->kind == ADD ? a->mag + b->mag : a->mag * b->mag;
            a->h1 = b->h1;
            sp--;
        }
    }
    *val = st[0].v;
    for (int h = 0; h < nh; h++) {
        g[h] = st[0].g[h];
        gm[h] = st[0].gm[h];
    }
    return nh;
}

/* ---- the cases --------------------------------------------------------------------------------- */

static const rkernel CASES[] = {
    {"gaussian(0.7)", 1, {{LEAF, 0, 0}}, {{GRAM_GAUSSIAN, 1, {0.7}, 0, 0, 0}}},
    {"gaussian(lengthscale=[0.5, 1.5, 2])", 1, {{LEAF, 0, 0}}, {{GRAM_GAUSSIAN, 3, {0.5, 1.5, 2}, 0, 0, 0}}},
    {"laplacian(1.3)", 1, {{LEAF, 0, 0}}, {{GRAM_LAPLACIAN, 1, {1.3}, 0, 0, 0}}},
    {"exponential(lengthscale=[1, 2, 0.5])", 1, {{LEAF, 0, 0}}, {{GRAM_EXPONENTIAL, 3, {1, 2, 0.5}, 0, 0, 0}}},
    {"matern32(lengthscale=[0.8, 1.1, 3])", 1, {{LEAF, 0, 0}}, {{GRAM_MATERN32, 3, {0.8, 1.1, 3}, 0, 0, 0}}},
    {"matern52(0.9)", 1, {{LEAF, 0, 0}}, {{GRAM_MATERN52, 1, {0.9}, 0, 0, 0}}},
    {"rq(lengthscale=[1, 0.7, 2], alpha=0.4)", 1, {{LEAF, 0, 0}},
     {{GRAM_RATIONAL_QUADRATIC, 3, {1, 0.7, 2}, 0.4, 0, 0}}},
    {"rq(1.2, alpha=3)", 1, {{LEAF, 0, 0}}, {{GRAM_RATIONAL_QUADRATIC, 1, {1.2}, 3, 0, 0}}},
    {"cauchy(lengthscale=[2, 1, 1])", 1, {{LEAF, 0, 0}}, {{GRAM_CAUCHY, 3, {2, 1, 1}, 0, 0, 0}}},
    {"periodic(lengthscale=0.8, period=2.5)", 1, {{LEAF, 0, 0}}, {{GRAM_PERIODIC, 1, {0.8}, 2.5, 0, 0}}},
    {"tophat(2)", 1, {{LEAF, 0, 0}}, {{GRAM_TOPHAT, 1, {2}, 0, 0, 0}}},
    {"epanechnikov(lengthscale=[2, 3, 2.5])", 1, {{LEAF, 0, 0}}, {{GRAM_EPANECHNIKOV, 3, {2, 3, 2.5}, 0, 0, 0}}},
    {"triangular(2.5)", 1, {{LEAF, 0, 0}}, {{GRAM_TRIANGULAR, 1, {2.5}, 0, 0, 0}}},
    {"cosine_window(lengthscale=[3, 2, 2])", 1, {{LEAF, 0, 0}}, {{GRAM_COSINE_WINDOW, 3, {3, 2, 2}, 0, 0, 0}}},
    {"neg_l2(1.5)", 1, {{LEAF, 0, 0}}, {{GRAM_NEG_L2, 1, {1.5}, 0, 0, 0}}},
    {"laplacian_l1(lengthscale=[1, 2, 3])", 1, {{LEAF, 0, 0}}, {{GRAM_LAPLACIAN_L1, 3, {1, 2, 3}, 0, 0, 0}}},
    {"neg_l1(0.5)", 1, {{LEAF, 0, 0}}, {{GRAM_NEG_L1, 1, {0.5}, 0, 0, 0}}},
    {"linear(lengthscale=[1, 2, 0.5], sigma0=0.7)", 1, {{LEAF, 0, 0}}, {{GRAM_LINEAR, 3, {1, 2, 0.5}, 0.7, 0, 0}}},
    {"linear(1.5)", 1, {{LEAF, 0, 0}}, {{GRAM_LINEAR, 1, {1.5}, 0, 0, 0}}},
    {"polynomial(0.9, degree=3, gamma=0.5, coef0=1.5)", 1, {{LEAF, 0, 0}},
     {{GRAM_POLYNOMIAL, 1, {0.9}, 3, 0.5, 1.5}}},
    {"polynomial(lengthscale=[1, 2, 3], degree=2, gamma=2, coef0=0)", 1, {{LEAF, 0, 0}},
     {{GRAM_POLYNOMIAL, 3, {1, 2, 3}, 2, 2, 0}}},
    {"cosine(lengthscale=[1, 3, 0.5])", 1, {{LEAF, 0, 0}}, {{GRAM_COSINE, 3, {1, 3, 0.5}, 0, 0, 0}}},
    {"constant(2.5)", 1, {{LEAF, 0, 0}}, {{GRAM_CONSTANT, 0, {0}, 2.5, 0, 0}}},
    {"white(0.3)", 1, {{LEAF, 0, 0}}, {{GRAM_WHITE, 0, {0}, 0.3, 0, 0}}},
    {"matern(0.8, nu=0.3)", 1, {{LEAF, 0, 0}}, {{GRAM_MATERN, 1, {0.8}, 0.3, 0, 0}}},
    {"matern(lengthscale=[1, 0.6, 2], nu=3.7)", 1, {{LEAF, 0, 0}}, {{GRAM_MATERN, 3, {1, 0.6, 2}, 3.7, 0, 0}}},
    {"sigmoid(lengthscale=[1, 2, 0.5], gamma=0.6, coef0=0.4)", 1, {{LEAF, 0, 0}},
     {{GRAM_SIGMOID, 3, {1, 2, 0.5}, 0.6, 0.4, 0}}},
    {"sigmoid(1.3, gamma=0.3, coef0=-1)", 1, {{LEAF, 0, 0}}, {{GRAM_SIGMOID, 1, {1.3}, 0.3, -1, 0}}},
    {"softmax(lengthscale=[1, 2, 0.5])", 1, {{LEAF, 0, 0}}, {{GRAM_SOFTMAX, 3, {1, 2, 0.5}, 0, 0, 0}}},
    {"softmax(1.3)", 1, {{LEAF, 0, 0}}, {{GRAM_SOFTMAX, 1, {1.3}, 0, 0, 0}}},
    {"arccos(lengthscale=[1, 2, 0.5], degree=0)", 1, {{LEAF, 0, 0}}, {{GRAM_ARCCOS, 3, {1, 2, 0.5}, 0, 0, 0}}},
    {"arccos(lengthscale=[0.7, 1.5, 1], degree=1)", 1, {{LEAF, 0, 0}}, {{GRAM_ARCCOS, 3, {0.7, 1.5, 1}, 1, 0, 0}}},
    {"arccos(lengthscale=[2, 1, 0.6], degree=2)", 1, {{LEAF, 0, 0}}, {{GRAM_ARCCOS, 3, {2, 1, 0.6}, 2, 0, 0}}},
    {"arccos(1.5, degree=0)", 1, {{LEAF, 0, 0}}, {{GRAM_ARCCOS, 1, {1.5}, 0, 0, 0}}},
    {"arccos(0.8, degree=2)", 1, {{LEAF, 0, 0}}, {{GRAM_ARCCOS, 1, {0.8}, 2, 0, 0}}},
    {"softmax(2)^0.5 * arccos(degree=1)", 4, {{LEAF, 0, 0}, {POW, 0, 0.5}, {LEAF, 1, 0}, {MUL, 0, 0}},
     {{GRAM_SOFTMAX, 1, {2}, 0, 0, 0}, {GRAM_ARCCOS, 1, {1}, 1, 0, 0}}},
    {"2*sigmoid(gamma=0.5)^2 * matern(nu=5.5)", 5, {{LEAF, 0, 0}, {POW, 0, 2}, {SCALE, 0, 2}, {LEAF, 1, 0}, {MUL, 0, 0}},
     {{GRAM_SIGMOID, 1, {1}, 0.5, 1, 0}, {GRAM_MATERN, 1, {1}, 5.5, 0, 0}}},
    /* composites: scale, sum with white, products, a zero scale, nested */
    {"2*gaussian(lengthscale=[0.5, 1.5, 2]) + white(0.3)", 4, {{LEAF, 0, 0}, {SCALE, 0, 2}, {LEAF, 1, 0}, {ADD, 0, 0}},
     {{GRAM_GAUSSIAN, 3, {0.5, 1.5, 2}, 0, 0, 0}, {GRAM_WHITE, 0, {0}, 0.3, 0, 0}}},
    {"rq(1.1, alpha=0.7) * periodic(lengthscale=1.2, period=3)", 3, {{LEAF, 0, 0}, {LEAF, 1, 0}, {MUL, 0, 0}},
     {{GRAM_RATIONAL_QUADRATIC, 1, {1.1}, 0.7, 0, 0}, {GRAM_PERIODIC, 1, {1.2}, 3, 0, 0}}},
    {"(linear(sigma0=1) + constant(2)) * matern32(lengthscale=[1, 2, 1]) * 0.5", 6,
     {{LEAF, 0, 0}, {LEAF, 1, 0}, {ADD, 0, 0}, {LEAF, 2, 0}, {MUL, 0, 0}, {SCALE, 0, 0.5}},
     {{GRAM_LINEAR, 1, {1}, 1, 0, 0}, {GRAM_CONSTANT, 0, {0}, 2, 0, 0}, {GRAM_MATERN32, 3, {1, 2, 1}, 0, 0, 0}}},
    {"poly(lengthscale=2, degree=2, gamma=1, coef0=1) * cauchy(1.5) + 0*linear + -1.5*laplacian_l1(2)", 9,
     {{LEAF, 0, 0}, {LEAF, 1, 0}, {MUL, 0, 0}, {LEAF, 2, 0}, {SCALE, 0, 0}, {ADD, 0, 0}, {LEAF, 3, 0},
      {SCALE, 0, -1.5}, {ADD, 0, 0}},
     {{GRAM_POLYNOMIAL, 1, {2}, 2, 1, 1}, {GRAM_CAUCHY, 1, {1.5}, 0, 0, 0}, {GRAM_LINEAR, 1, {1}, 0, 0, 0},
      {GRAM_LAPLACIAN_L1, 1, {2}, 0, 0, 0}}},
};

/* The pair is at least margin away from a compact kernel's edge (r = 1), where the value or the
 * derivative jumps. */
static int away_from_edges(const rkernel *K, int D, const double *y, const double *x)
{
    for (int l = 0; l < 4; l++) {
        const leaf *L = &K->leaves[l];
        if (!(L->f == GRAM_TOPHAT || L->f == GRAM_EPANECHNIKOV || L->f == GRAM_TRIANGULAR ||
              L->f == GRAM_COSINE_WINDOW))
            continue;
        ld t = 0;
        for (int d = 0; d < D; d++) {
            ld z = ((ld)y[d] - x[d]) / L->ls[L->nls > 1 ? d : 0];
            t += z * z;
        }
        if (fabsl(sqrtl(t) - 1) < 1e-9L) return 0;
    }
    return 1;
}

static gram_array view(void *data, gram_dtype t, int64_t r, int64_t c, int64_t rs, int64_t cs)
{
    gram_array a = {data, t, r, c, rs, cs};
    return a;
}

/* Values and gradients of case K on Y (M×3) against X (N×3), both dtypes and Y = X. */
static void check_case(const rkernel *K, check_rng *rng)
{
    gram_kernel *k = NULL;
    if (gram_kernel_parse(ctx, K->spec, &k)) {
        CHECK(0, "parse %s: %s", K->spec, gram_context_message(ctx));
        return;
    }
    enum { D = 3 };
    const int64_t P = gram_kernel_n_hyper(k);
    const int64_t shapes[][2] = {{1, 1}, {5, 7}, {3, 130}, {17, 129}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++)
        for (int sym = 0; sym < 2; sym++)
            for (int f32 = 0; f32 < 2; f32++) {
                int64_t M = shapes[sh][0], N = sym ? M : shapes[sh][1];
                if (sym) N = M = shapes[sh][1] > 40 ? 40 : shapes[sh][1];
                double *X = malloc(sizeof(double) * (size_t)(N * D)), *Y = malloc(sizeof(double) * (size_t)(M * D));
                float *Xf = malloc(sizeof(float) * (size_t)(N * D)), *Yf = malloc(sizeof(float) * (size_t)(M * D));
                double *out = malloc(sizeof(double) * (size_t)(M * N)), *mat = malloc(sizeof(double) * (size_t)(M * N));
                double *G = malloc(sizeof(double) * (size_t)(M * N * (P ? P : 1)));
                for (int64_t i = 0; i < N * D; i++) {
                    X[i] = 1.2 * check_normal(rng) + 0.3;
                    Xf[i] = (float)X[i];
                    if (f32) X[i] = Xf[i]; /* the reference sees exactly the float32 inputs */
                }
                for (int64_t i = 0; i < M * D; i++) {
                    Y[i] = 1.2 * check_normal(rng) - 0.2;
                    Yf[i] = (float)Y[i];
                    if (f32) Y[i] = Yf[i];
                }
                if (sym) {
                    memcpy(Y, X, sizeof(double) * (size_t)(N * D));
                    memcpy(Yf, Xf, sizeof(float) * (size_t)(N * D));
                }
                gram_array xa = f32 ? gram_array_f32(Xf, N, D) : gram_array_f64(X, N, D);
                gram_array ya = f32 ? gram_array_f32(Yf, M, D) : gram_array_f64(Y, M, D);
                gram_array oa = gram_array_f64(out, M, N), ma = gram_array_f64(mat, M, N);
                const gram_array *yp = sym ? NULL : &ya;
                gram_status s = gram_kernel_matrix_grad(ctx, k, yp, &xa, &oa, G);
                CHECK(s == GRAM_OK, "%s: matrix_grad %d %s", K->spec, (int)s, gram_context_message(ctx));
                CHECK_STATUS(gram_kernel_matrix(ctx, k, yp, &xa, &ma), GRAM_OK);
                CHECK(!memcmp(out, mat, sizeof(double) * (size_t)(M * N)), "%s: out differs from gram_kernel_matrix",
                      K->spec);
                if (s) goto next;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        const double *y = Y + i * D, *x = X + j * D;
                        if (!away_from_edges(K, D, y, x)) continue;
                        ld v, g[MAXP], gm[MAXP];
                        int nh = ref_eval(K, D, y, x, sym && i == j, &v, g, gm);
                        if (nh != P) {
                            CHECK(0, "%s: reference has %d hyperparameters, gram %lld", K->spec, nh, (long long)P);
                            goto next;
                        }
                        for (int64_t p = 0; p < P; p++) {
                            double got = G[(i * N + j) * P + p];
                            ld err = fabsl((ld)got - g[p]), tol = 1e-13L * fabsl(g[p]) + 4e-15L * gm[p];
                            if (!(err <= tol))
                                CHECK(0, "%s (%s%s) [%lld,%lld] d/dtheta_%lld (%s): got %.17g want %.17Lg (err %.3Lg, tol %.3Lg)",
                                      K->spec, f32 ? "f32" : "f64", sym ? ", sym" : "", (long long)i, (long long)j,
                                      (long long)p, gram_kernel_hyper_name(k, p), got, g[p], err, tol);
                            else
                                check_passed++;
                        }
                    }
            next:
                free(X), free(Y), free(Xf), free(Yf), free(out), free(mat), free(G);
            }
    gram_kernel_destroy(k);
}

static void test_reference(void)
{
    check_rng rng = {11};
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) check_case(&CASES[c], &rng);
}

/* The same bits for every thread count and architecture-independent layout checks: strided and
 * transposed views give what the contiguous call gives. */
static void test_threads_and_views(void)
{
    enum { M = 37, N = 300, D = 4 };
    const char *spec = "2*matern52(lengthscale=[1, 2, 0.5, 1]) * rq(alpha=0.8) + white(0.2) + linear(sigma0=0.5)";
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_kernel_parse(ctx, spec, &k), GRAM_OK);
    if (!k) return;
    int64_t P = gram_kernel_n_hyper(k);
    check_rng rng = {5};
    double *X = malloc(sizeof(double) * N * D), *XT = malloc(sizeof(double) * N * D), *Y = malloc(sizeof(double) * M * D);
    for (int i = 0; i < N * D; i++) X[i] = check_normal(&rng);
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) XT[d * N + i] = X[i * D + d];
    for (int i = 0; i < M * D; i++) Y[i] = check_normal(&rng);
    size_t gsz = sizeof(double) * (size_t)(N * N * P);
    double *G1 = malloc(gsz), *G2 = malloc(gsz), *out = malloc(sizeof(double) * N * N);
    gram_array xa = gram_array_f64(X, N, D), xt = view(XT, GRAM_FLOAT64, N, D, 1, N);
    gram_array oa = gram_array_f64(out, N, N);
    for (int sym = 0; sym < 2; sym++) {
        int64_t m = sym ? N : M;
        gram_array ya = gram_array_f64(Y, M, D), o = gram_array_f64(out, m, N);
        const gram_array *yp = sym ? NULL : &ya;
        gram_context_set_threads(ctx, 1);
        CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, yp, &xa, &o, G1), GRAM_OK);
        for (int t = 2; t <= 5; t += 3) {
            gram_context_set_threads(ctx, t);
            memset(G2, 0xff, gsz);
            CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, yp, &xa, &o, G2), GRAM_OK);
            CHECK(!memcmp(G1, G2, sizeof(double) * (size_t)(m * N * P)), "%d threads: different bits (sym %d)", t, sym);
        }
        /* X as a column-major view: the same bits */
        memset(G2, 0xff, gsz);
        CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, sym ? NULL : &ya, &xt, &o, G2), GRAM_OK);
        CHECK(!memcmp(G1, G2, sizeof(double) * (size_t)(m * N * P)), "strided X: different bits (sym %d)", sym);
    }
    gram_context_set_threads(ctx, 0);
    /* grad NULL is gram_kernel_matrix */
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &xa, &oa, NULL), GRAM_OK);
    /* the symmetric call puts the white noise on the diagonal: its derivative there is the noise */
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &xa, &oa, G1), GRAM_OK);
    int64_t hw = -1;
    for (int64_t p = 0; p < P; p++)
        if (!strcmp(gram_kernel_hyper_name(k, p), "leaf3.noise")) hw = p;
    CHECK(hw >= 0, "leaf3.noise is a hyperparameter");
    if (hw >= 0)
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < N; j += 37) {
                double g = G1[(i * N + j) * P + hw];
                CHECK(i == j ? g == 0.2 : g == 0.0, "white derivative at (%lld, %lld): %g", (long long)i, (long long)j, g);
            }
    free(X), free(XT), free(Y), free(G1), free(G2), free(out);
    gram_kernel_destroy(k);
}

static int cancel_at(void *user, int64_t done, int64_t total)
{
    (void)total;
    return done >= *(int64_t *)user;
}

static void test_errors(void)
{
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_kernel_parse(ctx, "rbf(lengthscale=[1, 2]) + white(0.1)", &k), GRAM_OK);
    if (!k) return;
    double X[6] = {0, 1, 2, 3, 4, 5}, out[9], G[27], Xn[6] = {0, 1, NAN, 3, 4, 5};
    gram_array xa = gram_array_f64(X, 3, 2), oa = gram_array_f64(out, 3, 3), bad = gram_array_f64(out, 2, 3);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, NULL, NULL, &xa, &oa, G), GRAM_EINVAL);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, NULL, &oa, G), GRAM_EINVAL);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &xa, NULL, G), GRAM_EINVAL);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &xa, &bad, G), GRAM_ESHAPE);
    gram_array x3 = gram_array_f64(X, 2, 3), o23 = gram_array_f64(out, 2, 2);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &x3, &o23, G), GRAM_ESHAPE); /* ARD D = 2 */
    gram_array xn = gram_array_f64(Xn, 3, 2);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &xn, &oa, G), GRAM_ENONFINITE);
    CHECK(strstr(gram_context_message(ctx), "row 1, column 0") != NULL, "NaN message: %s", gram_context_message(ctx));
    /* grad overlapping an input or out */
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &xa, &oa, X), GRAM_EINVAL);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &xa, &oa, out + 2), GRAM_EINVAL);
    CHECK(strstr(gram_context_message(ctx), "grad") != NULL, "overlap message: %s", gram_context_message(ctx));
    /* M·N·P overflows: 2^31 × 2^31 rows (zero strides) × 3 hyperparameters, refused before any scan */
    gram_array huge = {X, GRAM_FLOAT64, (int64_t)1 << 31, 2, 0, 1};
    gram_array ohuge = {out, GRAM_FLOAT64, (int64_t)1 << 31, (int64_t)1 << 31, 0, 0};
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &huge, &ohuge, G), GRAM_EOVERFLOW);
    /* empty shapes are fine */
    gram_array x0 = gram_array_f64(X, 0, 2), o0 = gram_array_f64(out, 0, 0);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &x0, &o0, G), GRAM_OK);
    gram_kernel_destroy(k);

    /* cancellation through the progress callback, in the gradient's phase too */
    enum { N = 600 };
    double *Xb = malloc(sizeof(double) * N), *ob = malloc(sizeof(double) * N * N), *Gb = malloc(sizeof(double) * N * N * 2);
    for (int i = 0; i < N; i++) Xb[i] = i * 0.01;
    CHECK_STATUS(gram_kernel_parse(ctx, "2*rbf", &k), GRAM_OK);
    gram_array xb = gram_array_f64(Xb, N, 1), obv = gram_array_f64(ob, N, N);
    int64_t at = 300;
    gram_context_set_progress(ctx, cancel_at, &at);
    gram_context_set_threads(ctx, 1);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &xb, &obv, Gb), GRAM_ECANCELLED);
    CHECK(strstr(gram_context_message(ctx), "cancelled") != NULL, "cancel message: %s", gram_context_message(ctx));
    gram_context_set_progress(ctx, NULL, NULL);
    gram_context_set_threads(ctx, 0);
    free(Xb), free(ob), free(Gb);
    gram_kernel_destroy(k);
}

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    test_reference();
    test_threads_and_views();
    test_errors();
    gram_context_destroy(ctx);
    return check_done();
}
