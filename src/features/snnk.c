/* Scalable neural network kernels (Sehanobish, Choromanski, Zhao, Dubey & Likhosherstov, ICLR
 * 2024, arXiv 2310.13225): a layer f(W x + b) as Φ(x)·Ψ(w, b).
 *
 * The universal random features rest on the Gaussian trick: for g ~ N(0, I) and any complex
 * vectors p, q, E[exp(g·p - p·p/2) exp(g·q - q·q/2)] = exp(p·q), p·p the bilinear (not Hermitian)
 * square. With f(z) = ∫ τ(ξ) e^(2πiξz) dξ and p = 2πiξ x, q = w, the paper's estimator of
 * f(w·x + b) is τ(ξ)/P(ξ)·e^(2πiξb)·exp(2πiξ g·x + 2π²ξ²|x|²)·exp(g·w - |w|²/2), ξ ~ P. For sin
 * and cos, τ is two Dirac masses at ξ = ±1/2π; summing both (rather than sampling one) leaves the
 * real part e^(s/2) e^(v - t/2) cos(u + b) (or sin), which the cos/sin pairs of Φ and Ψ factor.
 * For exp the frequency is real (p = x), which gives the positive random features. ReLU has no
 * Fourier transform; the paper's ReLU-SNNK uses max(g·x, 0) on both sides instead, an estimate of
 * the arc-cosine kernel.
 *
 * Ψ is computed once in float64 (and kept rounded to float32 for float32 inputs); Φ of a fixed
 * block of rows is computed in the input's dtype as transform.c does and multiplied by Ψᵀ at
 * once, so neither Φ(X) nor anything of size N × n_out × R is ever held. */
#include "features.h"

#include "../base/rng.h"
#include "../engine/engine.h"
#include "../linalg/linalg.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct gram_snnk {
    gram_activation act;
    int64_t d, n_out, R;
    int64_t m;        /* random vectors: R/2 for the cos/sin pairs, else R */
    int64_t da;       /* columns of G: d + 1 for ReLU with a bias (x̃ = [x, 1]), else d */
    uint64_t seed;
    double amp;       /* 1/√m */
    double *G;        /* m × da, row-major */
    float *G32;
    double *psi;      /* n_out × R, row-major */
    float *psi32;
    int psi32_finite; /* 0: some parameter feature overflows float32; float32 inputs are refused */
};

static const char *covered = "SIN (1), COS (2), EXP (3) and RELU (5)";

static int act_known(gram_activation a)
{
    return a == GRAM_ACT_SIN || a == GRAM_ACT_COS || a == GRAM_ACT_EXP || a == GRAM_ACT_RELU;
}

void gram_snnk_destroy(gram_snnk *L)
{
    if (!L) return;
    gram__free(L->G);
    gram__free(L->G32);
    gram__free(L->psi);
    gram__free(L->psi32);
    free(L);
}

int64_t gram_snnk_n_inputs(const gram_snnk *L) { return L ? L->d : 0; }
int64_t gram_snnk_n_outputs(const gram_snnk *L) { return L ? L->n_out : 0; }
int64_t gram_snnk_n_components(const gram_snnk *L) { return L ? L->R : 0; }
gram_activation gram_snnk_activation(const gram_snnk *L) { return L ? L->act : (gram_activation)0; }
uint64_t gram_snnk_seed(const gram_snnk *L) { return L ? L->seed : 0; }

/* Row j of Ψ from v = G w̃ (m values) and t = |w|² (ReLU: unused). Returns 0 if a feature is not
 * finite. */
static int psi_row(const gram_snnk *L, const double *v, double t, double bj, double *dst)
{
    const int64_t m = L->m;
    int ok = 1;
    switch (L->act) {
    case GRAM_ACT_SIN: case GRAM_ACT_COS: {
        const double sb = sin(bj), cb = cos(bj);
        /* Φ = [cos u, sin u]: cos(u + b) = cos u cos b - sin u sin b, sin(u + b) = cos u sin b + sin u cos b */
        const double c0 = L->act == GRAM_ACT_COS ? cb : sb, c1 = L->act == GRAM_ACT_COS ? -sb : cb;
        for (int64_t r = 0; r < m; r++) {
            const double e = L->amp * exp(v[r] - 0.5 * t);
            ok &= isfinite(e);
            dst[r] = e * c0;
            dst[m + r] = e * c1;
        }
        break;
    }
    case GRAM_ACT_EXP:
        for (int64_t r = 0; r < m; r++) ok &= isfinite(dst[r] = L->amp * exp(bj + v[r] - 0.5 * t));
        break;
    default: /* RELU */
        for (int64_t r = 0; r < m; r++) dst[r] = L->amp * (v[r] > 0 ? v[r] : 0.0);
        break;
    }
    return ok;
}

gram_status gram_snnk_create(gram_context *ctx, gram_activation act, const gram_array *W, const double *b,
                             int64_t R, uint64_t seed, gram_snnk **out)
{
    gram__clear(ctx);
    gram_status s;
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "out must not be NULL");
    *out = NULL;
    if (!act_known(act))
        return gram__fail(ctx, GRAM_EINVAL, "activation %d has no scalable neural network kernel features; "
                          "the SNNK paper's activations are %s", (int)act, covered);
    if ((s = gram__check_array(ctx, W, "W"))) return s;
    const int64_t n_out = W->rows, d = W->cols;
    if (n_out < 1 || d < 1)
        return gram__fail(ctx, GRAM_ESHAPE, "W is %lld×%lld: an SNNK layer needs at least one output and one input",
                          (long long)n_out, (long long)d);
    if ((s = gram__check_finite(ctx, W, "W"))) return s;
    if (b)
        for (int64_t j = 0; j < n_out; j++)
            if (!isfinite(b[j])) return gram__fail(ctx, GRAM_ENONFINITE, "b: entry %lld is %g", (long long)j, b[j]);
    if (R < 1) return gram__fail(ctx, GRAM_EINVAL, "n_components R must be >= 1, got %lld", (long long)R);
    const int pairs = act == GRAM_ACT_SIN || act == GRAM_ACT_COS;
    if (pairs && R % 2)
        return gram__fail(ctx, GRAM_EINVAL, "%s features come in cos/sin pairs: n_components R must be even, got %lld",
                          act == GRAM_ACT_SIN ? "SIN" : "COS", (long long)R);
    const int64_t m = pairs ? R / 2 : R, da = act == GRAM_ACT_RELU && b ? d + 1 : d;
    /* BLAS indexes with int: G, Ψ and a row of either must be within its reach */
    int64_t md, nR;
    size_t bytes_g, bytes_p;
    if (R > INT_MAX || da > INT_MAX || n_out > INT_MAX || !gram__mul_i64(m, da, &md) || !gram__mul_i64(n_out, R, &nR) ||
        !gram__bytes(md, sizeof(double) + sizeof(float), &bytes_g) ||
        !gram__bytes(nR, sizeof(double) + sizeof(float), &bytes_p) || bytes_g > SIZE_MAX - bytes_p)
        return gram__fail(ctx, GRAM_EOVERFLOW, "an SNNK layer of %lld features for %lld outputs in dimension %lld "
                          "has more random or parameter features than gram can index or hold",
                          (long long)R, (long long)n_out, (long long)d);
    if (!gram__memory_fits(bytes_g + bytes_p))
        return gram__fail(ctx, GRAM_ENOMEM, "an SNNK layer of %lld features for %lld outputs in dimension %lld needs "
                          "%zu bytes, more than the system can provide now", (long long)R, (long long)n_out,
                          (long long)d, bytes_g + bytes_p);

    gram_snnk *L = calloc(1, sizeof *L);
    if (!L) return gram__fail(ctx, GRAM_ENOMEM, "out of memory for an SNNK layer");
    L->act = act;
    L->d = d;
    L->n_out = n_out;
    L->R = R;
    L->m = m;
    L->da = da;
    L->seed = seed;
    L->amp = 1.0 / sqrt((double)m);
    L->G = gram__alloc((size_t)md * sizeof(double));
    L->G32 = gram__alloc((size_t)md * sizeof(float));
    L->psi = gram__alloc((size_t)nR * sizeof(double));
    L->psi32 = gram__alloc((size_t)nR * sizeof(float));
    double *wb = gram__alloc((size_t)da * sizeof(double)), *v = gram__alloc((size_t)m * sizeof(double));
    if (!L->G || !L->G32 || !L->psi || !L->psi32 || !wb || !v) {
        gram__free(wb);
        gram__free(v);
        gram_snnk_destroy(L);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for an SNNK layer's %lld×%lld random and %lld×%lld "
                          "parameter features", (long long)m, (long long)da, (long long)n_out, (long long)R);
    }
    for (int64_t r = 0; r < m; r++) {
        gram__rng rng;
        gram__rng_init(&rng, seed, (uint64_t)r);
        for (int64_t k = 0; k < da; k++) L->G32[r * da + k] = (float)(L->G[r * da + k] = gram__rng_normal(&rng));
    }
    /* One row of W at a time: n_out·m·da flops once per layer, in a fixed order. */
    int64_t bad = -1;
    for (int64_t j = 0; j < n_out && bad < 0; j++) {
        double t = 0;
        for (int64_t k = 0; k < d; k++) {
            wb[k] = gram__get(W, j, k);
            t += wb[k] * wb[k];
        }
        const double bj = b ? b[j] : 0.0;
        if (da > d) wb[d] = bj;
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)da, 1.0, L->G, (int)da, wb, 1, 0.0, v, 1);
        if (!psi_row(L, v, t, bj, L->psi + j * R)) bad = j;
    }
    gram__free(wb);
    gram__free(v);
    if (bad >= 0) {
        const double bj = b ? b[bad] : 0.0;
        gram_snnk_destroy(L);
        return gram__fail(ctx, GRAM_EDOMAIN, "W: row %lld: a parameter feature overflows (exp(g.w - |w|^2/2%s) is "
                          "too large for a double with b = %g); scale the layer's weights and bias down",
                          (long long)bad, act == GRAM_ACT_EXP ? " + b" : "", bj);
    }
    L->psi32_finite = 1;
    for (int64_t i = 0; i < nR; i++)
        if (!isfinite(L->psi32[i] = (float)L->psi[i])) L->psi32_finite = 0;
    *out = L;
    return GRAM_OK;
}

/* Rows per block: Φ of a block (B×R) and its outputs (B×n_out) stay in L2 while the second
 * product reads them, and B is large enough for BLAS's packing of Ψ to pay off. A function of the
 * layer's sizes, never of the threads. */
static int64_t block_rows(const gram_snnk *L)
{
    const int64_t w = L->R > L->n_out ? L->R : L->n_out;
    int64_t B = 131072 / (w > 0 ? w : 1);
    return B < 8 ? 8 : B > 256 ? 256 : B;
}

typedef struct ws {
    void *xb;    /* B×d block of X in the compute dtype */
    void *p;     /* B×m projections */
    void *phi;   /* B×R input features */
    void *arg;   /* m values: the exponentials' arguments */
    void *ob;    /* B×n_out outputs when out cannot take them in place */
    double *nrm; /* B values: |x|² */
} ws;

/* Φ of one row from its projection p (m values) and s = |x|²; dst R values. Returns 0 if a feature
 * is not finite. */
static int phi_row_f64(const gram_snnk *L, const gram__ukr *u, double *p, double s, double *dst, double *arg)
{
    const int64_t m = L->m;
    int ok = 1;
    switch (L->act) {
    case GRAM_ACT_SIN: case GRAM_ACT_COS: {
        const double amp = L->amp * exp(0.5 * s);
        if (!isfinite(amp)) return 0;
        return !gram__sincos_f64(m, p, amp, dst, dst + m);
    }
    case GRAM_ACT_EXP:
        for (int64_t r = 0; r < m; r++) arg[r] = p[r] - 0.5 * s;
        u->exp_f64(m, arg, dst);
        for (int64_t r = 0; r < m; r++) ok &= (dst[r] *= L->amp) < INFINITY;
        return ok;
    default:
        for (int64_t r = 0; r < m; r++) dst[r] = L->amp * (p[r] > 0 ? p[r] : 0.0);
        return 1;
    }
}

static int phi_row_f32(const gram_snnk *L, const gram__ukr *u, float *p, double s, float *dst, float *arg)
{
    const int64_t m = L->m;
    const float amp = (float)L->amp, hs = (float)(0.5 * s);
    int ok = 1;
    switch (L->act) {
    case GRAM_ACT_SIN: case GRAM_ACT_COS: {
        const float a = (float)(L->amp * exp(0.5 * s));
        if (!isfinite(a)) return 0;
        return !gram__sincos_f32(m, p, a, dst, dst + m);
    }
    case GRAM_ACT_EXP:
        for (int64_t r = 0; r < m; r++) arg[r] = p[r] - hs;
        u->exp_f32(m, arg, dst);
        for (int64_t r = 0; r < m; r++) ok &= (dst[r] *= amp) < INFINITY;
        return ok;
    default:
        for (int64_t r = 0; r < m; r++) dst[r] = amp * (p[r] > 0 ? p[r] : 0.0f);
        return 1;
    }
}

/* Rows [i0, i0 + n) of X: their features (feat: out gets Φ) or their outputs (out gets Φ Ψᵀ).
 * Returns the first row (absolute) whose features or outputs are not finite, or -1. */
static int64_t run_block(const gram_snnk *L, const gram__ukr *u, const gram_array *X, gram_array *out, int feat,
                         int64_t i0, int64_t n, ws *w)
{
    const int64_t d = L->d, m = L->m, R = L->R, no = L->n_out, da = L->da;
    const int f32 = X->dtype == GRAM_FLOAT32;
    const size_t es = f32 ? sizeof(float) : sizeof(double);
    for (int64_t i = 0; i < n; i++) {
        double nn = 0;
        for (int64_t k = 0; k < d; k++) {
            const double x = gram__get(X, i0 + i, k);
            if (f32) ((float *)w->xb)[i * d + k] = (float)x;
            else ((double *)w->xb)[i * d + k] = x;
            nn += x * x;
        }
        w->nrm[i] = nn;
    }
    /* the projection G x̃ = G[:, :d] x (+ G[:, d], the augmented 1 of ReLU with a bias) */
    if (f32)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)d, 1.0f, w->xb, (int)d, L->G32,
                    (int)da, 0.0f, w->p, (int)m);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)d, 1.0, w->xb, (int)d, L->G, (int)da,
                    0.0, w->p, (int)m);
    if (da > d)
        for (int64_t i = 0; i < n; i++)
            for (int64_t r = 0; r < m; r++) {
                if (f32) ((float *)w->p)[i * m + r] += L->G32[r * da + d];
                else ((double *)w->p)[i * m + r] += L->G[r * da + d];
            }
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        const int ok = f32 ? phi_row_f32(L, u, (float *)w->p + i * m, w->nrm[i], (float *)w->phi + i * R, w->arg)
                           : phi_row_f64(L, u, (double *)w->p + i * m, w->nrm[i], (double *)w->phi + i * R, w->arg);
        if (!ok && bad < 0) bad = i0 + i;
    }
    if (bad >= 0) return bad;
    const int64_t cols = feat ? R : no;
    const int direct = out->dtype == X->dtype && out->col_stride == 1 && out->row_stride >= cols && out->row_stride <= INT_MAX;
    void *dst = direct ? (char *)out->data + (size_t)(i0 * out->row_stride) * es : w->ob;
    const int ld = direct ? (int)out->row_stride : (int)cols;
    if (feat) {
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)dst + (size_t)(i * ld) * es, (char *)w->phi + (size_t)(i * R) * es, (size_t)R * es);
    } else if (f32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)no, (int)R, 1.0f, w->phi, (int)R, L->psi32,
                    (int)R, 0.0f, dst, ld);
    } else {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)no, (int)R, 1.0, w->phi, (int)R, L->psi,
                    (int)R, 0.0, dst, ld);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < cols; j++) {
            const double v = f32 ? (double)((const float *)dst)[i * ld + j] : ((const double *)dst)[i * ld + j];
            if (!isfinite(v) && bad < 0) bad = i0 + i;
            if (!direct) gram__put(out, i0 + i, j, v);
        }
    return bad;
}

typedef struct blocks_arg {
    const gram_snnk *L;
    const gram__ukr *u;
    const gram_array *X;
    gram_array *out;
    int feat;
    size_t off[5]; /* sizes of the scratch parts xb, p, phi, arg, ob (nrm is the rest) */
} blocks_arg;

static int64_t rows_block(const void *arg, char *c, int64_t i0, int64_t n)
{
    const blocks_arg *a = arg;
    const size_t *o = a->off;
    ws w = {c, c + o[0], c + o[0] + o[1], c + o[0] + o[1] + o[2], c + o[0] + o[1] + o[2] + o[3],
            (double *)(c + o[0] + o[1] + o[2] + o[3] + o[4])};
    return run_block(a->L, a->u, a->X, a->out, a->feat, i0, n, &w);
}

static gram_status run(gram_context *ctx, const gram_snnk *L, const gram_array *X, gram_array *out, int feat)
{
    gram__clear(ctx);
    gram_status s;
    if (!L) return gram__fail(ctx, GRAM_EINVAL, "SNNK layer must not be NULL");
    if ((s = gram__check_array(ctx, X, "X")) || (s = gram__check_array(ctx, out, "out"))) return s;
    if (X->cols != L->d)
        return gram__fail(ctx, GRAM_ESHAPE, "X has %lld columns but the SNNK layer was made for %lld inputs",
                          (long long)X->cols, (long long)L->d);
    const int64_t cols = feat ? L->R : L->n_out;
    if (out->rows != X->rows || out->cols != cols)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×%lld (rows of X × %s)",
                          (long long)out->rows, (long long)out->cols, (long long)X->rows, (long long)cols,
                          feat ? "n_components" : "n_outputs");
    if ((s = gram__check_no_overlap(ctx, out, X, "out", "X"))) return s;
    if ((s = gram__check_out_distinct(ctx, out))) return s;
    if (X->dtype == GRAM_FLOAT32 && !feat && !L->psi32_finite)
        return gram__fail(ctx, GRAM_EDOMAIN, "the layer's parameter features overflow float32 (|w| or b too large "
                          "for float32 features); pass float64 data");
    const int64_t N = X->rows;
    if (N == 0) return GRAM_OK;
    if ((s = gram__check_finite(ctx, X, "X"))) return s;

    gram_arch arch;
    if ((s = gram__resolve_arch(ctx, &arch))) return s;
    const gram__ukr *u = gram__ukr_for(arch);
    if (!u) return gram__fail(ctx, GRAM_EUNSUPPORTED, "architecture %s is not compiled into this build", gram__arch_name(arch));
    const int64_t B = block_rows(L);
    const size_t es = X->dtype == GRAM_FLOAT32 ? sizeof(float) : sizeof(double);
#define UP(x) (((x) + 63) & ~(size_t)63)
    const size_t sx = UP((size_t)(B * L->d) * es), sp = UP((size_t)(B * L->m) * es), sf = UP((size_t)(B * L->R) * es),
                 sa = UP((size_t)L->m * es), so = UP((size_t)(B * cols) * es), sn = UP((size_t)B * 8),
                 per = sx + sp + sf + sa + so + sn;
#undef UP
    const blocks_arg a = {L, u, X, out, feat, {sx, sp, sf, sa, so}};
    int64_t bad = -1;
    if ((s = gram__run_row_blocks(ctx, N, B, per, "the SNNK layer's", rows_block, &a, &bad))) return s;
    if (bad >= 0)
        return gram__fail(ctx, GRAM_EDOMAIN, "X: row %lld: an SNNK %s is not finite (%s); scale the inputs down%s",
                          (long long)bad, feat ? "input feature" : "input feature or output",
                          L->act == GRAM_ACT_EXP ? "exp(g.x - |x|^2/2) overflows"
                          : L->act == GRAM_ACT_RELU ? "the product overflows"
                                                    : "exp(|x|^2/2) overflows past |x| = 37 in float64, 13 in float32",
                          X->dtype == GRAM_FLOAT32 ? " or pass float64 data" : "");
    return GRAM_OK;
}

gram_status gram_snnk_apply(gram_context *ctx, const gram_snnk *L, const gram_array *X, gram_array *out)
{
    return run(ctx, L, X, out, 0);
}

gram_status gram_snnk_input_features(gram_context *ctx, const gram_snnk *L, const gram_array *X, gram_array *out)
{
    return run(ctx, L, X, out, 1);
}

gram_status gram_snnk_weight_features(gram_context *ctx, const gram_snnk *L, gram_array *out)
{
    gram__clear(ctx);
    gram_status s;
    if (!L) return gram__fail(ctx, GRAM_EINVAL, "SNNK layer must not be NULL");
    if ((s = gram__check_array(ctx, out, "out"))) return s;
    if (out->rows != L->n_out || out->cols != L->R)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×%lld (n_outputs × n_components)",
                          (long long)out->rows, (long long)out->cols, (long long)L->n_out, (long long)L->R);
    for (int64_t j = 0; j < L->n_out; j++)
        for (int64_t r = 0; r < L->R; r++) {
            const double v = L->psi[j * L->R + r];
            if (out->dtype == GRAM_FLOAT32 && !isfinite((float)v))
                return gram__fail(ctx, GRAM_EDOMAIN, "W: row %lld: a parameter feature (%g) overflows float32; "
                                  "pass a float64 out", (long long)j, v);
            gram__put(out, j, r, v);
        }
    return GRAM_OK;
}
