/* φ(X) for a feature map: fixed blocks of rows, each projected (Ω x by one BLAS call, or SORF's
 * Walsh–Hadamard chain) into a per-thread buffer and mapped elementwise into out.
 *
 * The blocks do not depend on the thread count and each is computed by the same single-threaded
 * BLAS call whichever thread runs it, so the bits of out do not either. */
#include "features.h"

#include "../base/progress.h"
#include "../engine/engine.h"
#include "../linalg/linalg.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

void gram__fwht(double *v, int64_t n)
{
    for (int64_t h = 1; h < n; h *= 2)
        for (int64_t i = 0; i < n; i += 2 * h)
            for (int64_t j = i; j < i + h; j++) {
                const double a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
}

/* Rows per block: the projection of a block (B×F values, 512 KiB in float32, 1 MiB in float64)
 * stays in L2 until the map reads it, and B is large enough (64 rows at F = 2048) for BLAS's
 * packing of Ω to be amortised (16 rows measured ~20% slower on one core). A function of F
 * alone, never of the threads. */
static int64_t block_rows(int64_t F)
{
    int64_t B = 131072 / (F > 0 ? F : 1);
    return B < 8 ? 8 : B > 256 ? 256 : B;
}

/* The elementwise maps, one row: p the projection (F values, used as scratch), nrm = |x/ℓ|², dst
 * R values, arg F values of scratch; exp is the engine's vector exp (≤ 1 ulp, every argument).
 * Returns 1 if a feature is not finite (a projection or an exponential overflowed). */
static int map_row_f64(const gram_features *f, const gram__ukr *u, double *p, double nrm, double *dst, double *arg)
{
    const int64_t F = f->F;
    const double amp = f->amp;
    int bad = 0;
    switch (f->map) {
    case GRAM__FMAP_LINEAR:
        for (int64_t j = 0; j < F; j++) bad |= !(fabs(dst[j] = amp * p[j]) < INFINITY);
        break;
    case GRAM__FMAP_PAIRS:
        return gram__sincos_f64(F, p, amp, dst, dst + F);
    case GRAM__FMAP_ARCCOS: {
        const int n = f->arccos_n;
        for (int64_t j = 0; j < F; j++) {
            const double v = p[j];
            dst[j] = v > 0 ? (n == 0 ? amp : n == 1 ? amp * v : amp * v * v) : v == 0 && n == 0 ? 0.5 * amp : 0.0;
            bad |= !(dst[j] < INFINITY);
        }
        break;
    }
    case GRAM__FMAP_PHASE:
        for (int64_t j = 0; j < F; j++) p[j] += f->phase[j];
        return gram__sincos_f64(F, p, amp, dst, NULL);
    case GRAM__FMAP_HYPERBOLIC:
        for (int64_t j = 0; j < F; j++) arg[j] = -p[j] - nrm;
        u->exp_f64(F, arg, dst + F);
        for (int64_t j = 0; j < F; j++) bad |= !((dst[F + j] *= amp) < INFINITY);
        /* fall through */
    case GRAM__FMAP_POSITIVE:
        for (int64_t j = 0; j < F; j++) arg[j] = p[j] - nrm;
        u->exp_f64(F, arg, dst);
        for (int64_t j = 0; j < F; j++) bad |= !((dst[j] *= amp) < INFINITY);
        break;
    }
    return bad;
}

static int map_row_f32(const gram_features *f, const gram__ukr *u, float *p, double nrm, float *dst, float *arg)
{
    const int64_t F = f->F;
    const float amp = (float)f->amp, n = (float)nrm;
    int bad = 0;
    switch (f->map) {
    case GRAM__FMAP_LINEAR:
        for (int64_t j = 0; j < F; j++) bad |= !(fabsf(dst[j] = amp * p[j]) < INFINITY);
        break;
    case GRAM__FMAP_PAIRS:
        return gram__sincos_f32(F, p, amp, dst, dst + F);
    case GRAM__FMAP_ARCCOS: {
        const int n = f->arccos_n;
        for (int64_t j = 0; j < F; j++) {
            const float v = p[j];
            dst[j] = v > 0 ? (n == 0 ? amp : n == 1 ? amp * v : amp * v * v) : v == 0 && n == 0 ? 0.5f * amp : 0.0f;
            bad |= !(dst[j] < INFINITY);
        }
        break;
    }
    case GRAM__FMAP_PHASE:
        for (int64_t j = 0; j < F; j++) p[j] += (float)f->phase[j];
        return gram__sincos_f32(F, p, amp, dst, NULL);
    case GRAM__FMAP_HYPERBOLIC:
        for (int64_t j = 0; j < F; j++) arg[j] = -p[j] - n;
        u->exp_f32(F, arg, dst + F);
        for (int64_t j = 0; j < F; j++) bad |= !((dst[F + j] *= amp) < INFINITY);
        /* fall through */
    case GRAM__FMAP_POSITIVE:
        for (int64_t j = 0; j < F; j++) arg[j] = p[j] - n;
        u->exp_f32(F, arg, dst);
        for (int64_t j = 0; j < F; j++) bad |= !((dst[j] *= amp) < INFINITY);
        break;
    }
    return bad;
}

/* SORF's projection of the n rows of a block for Hadamard block b: V holds them as columns (Dp × B,
 * row d of V is coordinate d of every point, scaled and zero-padded), and becomes
 * √Dp·H S1 H S2 H S3 v = Hu S1 Hu S2 Hu S3 v / Dp, Hu the unnormalised transform, applied to all
 * n columns at once so that every butterfly is a vector loop over the points. */
static void sorf_block(const gram_features *f, int64_t b, double *V, int64_t B, int64_t n)
{
    const int64_t Dp = f->Dp;
    const signed char *s = f->signs + b * 3 * Dp;
    for (int k = 2; k >= 0; k--) {
        for (int64_t d = 0; d < Dp; d++) {
            const double sg = s[k * Dp + d];
            for (int64_t i = 0; i < n; i++) V[d * B + i] *= sg;
        }
        for (int64_t h = 1; h < Dp; h *= 2)
            for (int64_t i0 = 0; i0 < Dp; i0 += 2 * h)
                for (int64_t j = i0; j < i0 + h; j++) {
                    double *a = V + j * B, *c = V + (j + h) * B;
                    for (int64_t i = 0; i < n; i++) {
                        const double u = a[i], w = c[i];
                        a[i] = u + w;
                        c[i] = u - w;
                    }
                }
    }
    const double inv = 1.0 / (double)Dp;
    for (int64_t j = 0; j < Dp * B; j++) V[j] *= inv;
}

typedef struct ws {
    void *xb;   /* B×D block of X in the compute dtype */
    void *p;    /* B×F projections */
    void *row;  /* R values: an output row when out cannot take it in place */
    void *arg;  /* F values: the exponentials' arguments */
    double *nrm; /* B values */
    double *v;  /* SORF: Dp × B values; TensorSketch: GRAM__TS_W·(5R + D + 1) */
} ws;

/* Rows [i0, i0 + n) of X into out; returns the first row (absolute) whose features overflowed, or
 * -1. */
static int64_t run_block(const gram_features *f, const gram__ukr *u, const gram_array *X, gram_array *out,
                         int64_t i0, int64_t n, int64_t B, ws *w)
{
    const int64_t D = f->D, F = f->F, R = f->R;
    const int f32 = X->dtype == GRAM_FLOAT32;
    const size_t es = f32 ? sizeof(float) : sizeof(double);
    for (int64_t i = 0; i < n; i++) {
        double nn = 0;
        for (int64_t d = 0; d < D; d++) {
            const double x = gram__get(X, i0 + i, d);
            if (f32) ((float *)w->xb)[i * D + d] = (float)x;
            else ((double *)w->xb)[i * D + d] = x;
            const double xs = x * f->inv_ls[d];
            nn += xs * xs;
        }
        w->nrm[i] = f->leaf->family == GRAM_SOFTMAX ? 0.5 * nn : nn; /* exp(ω·x - |x|²/2): softmax's */
    }
    if (f->draw == GRAM__FDRAW_SKETCH) {
        /* groups of GRAM__TS_W points, one per vector lane of the FFTs; work: their x' (W × (D + 1)),
         * the sketch's two complex arrays (4R·W), its output (R·W) */
        enum { W = GRAM__TS_W };
        double *xs = w->v, *work = xs + W * (D + 1), *res = work + 4 * F * W;
        for (int64_t g0 = 0; g0 < n; g0 += W) {
            const int64_t m = n - g0 < W ? n - g0 : W;
            for (int64_t l = 0; l < m; l++) {
                const int64_t i = g0 + l;
                for (int64_t d = 0; d < D; d++)
                    xs[l * (D + 1) + d] = (f32 ? (double)((float *)w->xb)[i * D + d] : ((double *)w->xb)[i * D + d]) *
                                          f->inv_ls[d] * f->ts_scale;
                xs[l * (D + 1) + D] = f->ts_const;
            }
            gram__tensorsketch_rows(f, xs, m, work, res);
            for (int64_t l = 0; l < m; l++)
                for (int64_t j = 0; j < F; j++)
                    if (f32) ((float *)w->p)[(g0 + l) * F + j] = (float)res[l * F + j];
                    else ((double *)w->p)[(g0 + l) * F + j] = res[l * F + j];
        }
    } else if (f->draw == GRAM__FDRAW_HADAMARD) {
        const int64_t Dp = f->Dp;
        double *V = w->v;
        for (int64_t b = 0; b < f->n_blocks; b++) {
            for (int64_t d = 0; d < Dp; d++)
                for (int64_t i = 0; i < n; i++)
                    V[d * B + i] = d < D ? (f32 ? (double)((float *)w->xb)[i * D + d] : ((double *)w->xb)[i * D + d]) * f->inv_ls[d] : 0.0;
            sorf_block(f, b, V, B, n);
            const int64_t j0 = b * Dp, m = F - j0 < Dp ? F - j0 : Dp;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < m; j++)
                    if (f32) ((float *)w->p)[i * F + j0 + j] = (float)V[j * B + i];
                    else ((double *)w->p)[i * F + j0 + j] = V[j * B + i];
        }
    } else if (f32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)F, (int)D, 1.0f, w->xb, (int)D,
                    f->omega32, (int)D, 0.0f, w->p, (int)F);
    } else {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)F, (int)D, 1.0, w->xb, (int)D,
                    f->omega, (int)D, 0.0, w->p, (int)F);
    }
    const int direct = out->col_stride == 1 && out->dtype == X->dtype;
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        void *dst = direct ? (char *)out->data + (size_t)((i0 + i) * out->row_stride) * es : w->row;
        const int over = f32 ? map_row_f32(f, u, (float *)w->p + i * F, w->nrm[i], dst, w->arg)
                             : map_row_f64(f, u, (double *)w->p + i * F, w->nrm[i], dst, w->arg);
        if (over && bad < 0) bad = i0 + i;
        if (!direct)
            for (int64_t j = 0; j < R; j++)
                gram__put(out, i0 + i, j, f32 ? (double)((const float *)dst)[j] : ((const double *)dst)[j]);
    }
    return bad;
}

typedef struct blocks_arg {
    const gram_features *f;
    const gram__ukr *u;
    const gram_array *X;
    gram_array *out;
    int64_t B;
    size_t off[5]; /* sizes of the scratch parts xb, p, row, arg, nrm (v is the rest) */
} blocks_arg;

static int64_t rows_block(const void *arg, char *m, int64_t i0, int64_t n)
{
    const blocks_arg *a = arg;
    const size_t *o = a->off;
    ws w = {m, m + o[0], m + o[0] + o[1], m + o[0] + o[1] + o[2], (double *)(m + o[0] + o[1] + o[2] + o[3]),
            (double *)(m + o[0] + o[1] + o[2] + o[3] + o[4])};
    return run_block(a->f, a->u, a->X, a->out, i0, n, a->B, &w);
}

gram_status gram__check_out_distinct(gram_context *ctx, const gram_array *out)
{
    const int64_t ars = out->row_stride < 0 ? -out->row_stride : out->row_stride,
                  acs = out->col_stride < 0 ? -out->col_stride : out->col_stride;
    if (out->rows > 1 && out->cols > 0 && !(ars >= out->cols * acs && ars > 0) &&
        !(out->cols > 1 && acs >= out->rows * ars && ars > 0))
        return gram__fail(ctx, GRAM_EINVAL, "out: elements overlap in memory (%lld×%lld with strides (%lld, %lld))",
                          (long long)out->rows, (long long)out->cols, (long long)out->row_stride,
                          (long long)out->col_stride);
    return GRAM_OK;
}

gram_status gram__run_row_blocks(gram_context *ctx, int64_t N, int64_t B, size_t per, const char *what,
                                 gram__rows_fn fn, const void *arg, int64_t *bad)
{
    const int64_t nb = (N + B - 1) / B;
    int nt = gram__threads(ctx);
    if (nt > nb) nt = (int)nb;
    *bad = -1;
    char *mem = gram__alloc(per * (size_t)nt);
    if (!mem) return gram__fail(ctx, GRAM_ENOMEM, "out of memory for %s %d block buffers", what, nt);

    gram__progress ps = {0, nb, 0};
    int64_t first = -1;
    const int saved = gram__blas_serial_begin(0);
    nt = gram__team_size(nt);
#pragma omp parallel num_threads(nt)
    {
        char *m = mem + per * (size_t)omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nb; b++) {
            if (gram__progress_cancelled(&ps)) continue;
            const int64_t i0 = b * B, n = N - i0 < B ? N - i0 : B;
            const int64_t r = fn(arg, m, i0, n);
            if (r >= 0) {
#pragma omp critical(gram_row_blocks_bad)
                if (first < 0 || r < first) first = r;
            }
            gram__progress_report(ctx, &ps, 1);
        }
    }
    gram__blas_serial_end(saved);
    gram__free(mem);
    if (ps.cancelled)
        return gram__fail(ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld blocks",
                          (long long)ps.done, (long long)ps.total);
    *bad = first;
    return GRAM_OK;
}

gram_status gram_features_transform(gram_context *ctx, const gram_features *f, const gram_array *X,
                                    gram_array *out)
{
    gram__clear(ctx);
    gram_status s;
    if (!f) return gram__fail(ctx, GRAM_EINVAL, "feature map must not be NULL");
    if ((s = gram__check_array(ctx, X, "X")) || (s = gram__check_array(ctx, out, "out"))) return s;
    if (X->cols != f->D)
        return gram__fail(ctx, GRAM_ESHAPE, "X has %lld columns but the feature map was made for dimension %lld",
                          (long long)X->cols, (long long)f->D);
    if (out->rows != X->rows || out->cols != f->R)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×%lld (rows of X × n_components)",
                          (long long)out->rows, (long long)out->cols, (long long)X->rows, (long long)f->R);
    if ((s = gram__check_no_overlap(ctx, out, X, "out", "X"))) return s;
    if ((s = gram__check_out_distinct(ctx, out))) return s;
    if (X->dtype == GRAM_FLOAT32 && f->omega && !f->omega32_finite)
        return gram__fail(ctx, GRAM_EDOMAIN, "the map's frequencies overflow float32 (a lengthscale is too small for "
                          "float32 features); pass float64 data");
    const int64_t N = X->rows;
    if (N == 0) return GRAM_OK;
    if ((s = gram__check_finite(ctx, X, "X"))) return s;
    if (f->method == GRAM_FEATURES_NYSTROM) return gram__nystrom_transform(ctx, f, X, out);

    gram_arch arch;
    if ((s = gram__resolve_arch(ctx, &arch))) return s;
    const gram__ukr *u = gram__ukr_for(arch);
    if (!u) return gram__fail(ctx, GRAM_EUNSUPPORTED, "architecture %s is not compiled into this build", gram__arch_name(arch));
    const int64_t B = block_rows(f->F);
    const size_t es = X->dtype == GRAM_FLOAT32 ? sizeof(float) : sizeof(double);
    /* per thread: xb, p, row, nrm, v; each part rounded to 64 bytes to keep them aligned */
#define UP(x) (((x) + 63) & ~(size_t)63)
    const size_t sx = UP((size_t)(B * f->D) * es), sp = UP((size_t)(B * f->F) * es), sr = UP((size_t)f->R * 8),
                 sa = UP((size_t)f->F * es), sn = UP((size_t)B * 8), sv = UP((size_t)(f->draw == GRAM__FDRAW_SKETCH ? GRAM__TS_W * (5 * f->R + f->D + 1) : f->Dp * B) * 8),
                 per = sx + sp + sr + sa + sn + sv;
#undef UP
    const blocks_arg a = {f, u, X, out, B, {sx, sp, sr, sa, sn}};
    int64_t bad = -1;
    if ((s = gram__run_row_blocks(ctx, N, B, per, "the feature transform's", rows_block, &a, &bad))) return s;
    if (bad >= 0)
        return gram__fail(ctx, GRAM_EDOMAIN, "X: row %lld: a feature is not finite (the projection w.x or an "
                          "exponential feature exp(w.x - |x|^2) overflows: |x|/lengthscale is too large for this map); "
                          "scale or centre the data", (long long)bad);
    return GRAM_OK;
}
