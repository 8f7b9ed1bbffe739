/* The driver: packs X and Y once per metric group, cuts the work into tiles of GRAM_MR query rows
 * × GRAM_KC data points, runs the kernel program tile by tile on OpenMP threads and combines the
 * per-chunk partial results in chunk order. Because a row's result is always
 *     ((0 + P_0) + P_1) + ... + P_{C-1}
 * with P_c computed by one microkernel call whatever thread ran it, the bits do not depend on the
 * thread count. OpenMP lives only in this file. */
#include "engine.h"
#include "../base/progress.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define GRAM_ROW_GROUP 8 /* most row tiles per task when splitting by rows */

static size_t esize(gram_dtype t) { return t == GRAM_FLOAT64 ? sizeof(double) : sizeof(float); }

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* Scale for dimension d of a leaf. */
static double inv_scale(const gram__leaf *L, int64_t d)
{
    return L->n_scale == 0 ? 1.0 : L->inv_scale[L->n_scale == 1 ? 0 : d];
}

/* A coordinate ready to pack: (v - c)·s, with c the group's centre (0 for dot-product groups). The
 * difference is taken before the scaling, so that data far from the origin relative to the
 * lengthscale (timestamps and a lengthscale of a minute) keep the digits their differences need;
 * where v - c overflows (|v| near the largest double) the scaled terms are subtracted instead. */
static inline double packed(double v, double c, double s)
{
    double d = v - c;
    return isfinite(d) ? d * s : v * s - c * s;
}

static gram_status pack_group(gram__plan *p, gram__group *g, const gram_array *Y, const gram_array *X)
{
    const int64_t D = p->D, N = p->N, M = p->M, Npad = p->Npad;
    size_t es = esize(p->dtype), bx, by;
    int64_t nx, ny;
    /* At least one element each, so pointer arithmetic on empty arrays stays defined. */
    if (!gram__mul_i64(Npad, D, &nx) || !gram__mul_i64(M, D, &ny) || !gram__bytes(nx + 1, es, &bx) ||
        !gram__bytes(ny + 1, es, &by))
        return gram__fail(p->ctx, GRAM_EOVERFLOW, "packed data size overflows");
    g->xp = gram__alloc(bx);
    g->yp = gram__alloc(by);
    g->xx = gram__alloc((size_t)(Npad + 1) * es);
    g->yy = gram__alloc((size_t)(M + 1) * es);
    if (!g->xp || !g->yp || !g->xx || !g->yy)
        return gram__fail(p->ctx, GRAM_ENOMEM, "cannot allocate %zu bytes for packed inputs", bx + by);
    const gram__leaf *L = g->leaf;
    const double *ctr = g->centred ? p->center : NULL;
    for (int64_t j = 0; j < Npad; j++) {
        int64_t src = j < N ? j : N - 1; /* padding repeats the last point: finite, weight 0 */
        int64_t panel = j / GRAM_PANEL, lane = j % GRAM_PANEL;
        double nrm = 0.0;
        for (int64_t d = 0; d < D; d++) {
            double v = src >= 0 ? packed(gram__get(X, src, d), ctr ? ctr[d] : 0.0, inv_scale(L, d)) : 0.0;
            int64_t off = panel * D * GRAM_PANEL + d * GRAM_PANEL + lane;
            if (p->dtype == GRAM_FLOAT64) ((double *)g->xp)[off] = v;
            else ((float *)g->xp)[off] = (float)v;
            nrm += v * v;
        }
        if (p->dtype == GRAM_FLOAT64) ((double *)g->xx)[j] = nrm;
        else ((float *)g->xx)[j] = (float)nrm;
    }
    for (int64_t i = 0; i < M; i++) {
        double nrm = 0.0;
        for (int64_t d = 0; d < D; d++) {
            double v = packed(gram__get(Y, i, d), ctr ? ctr[d] : 0.0, inv_scale(L, d));
            if (p->dtype == GRAM_FLOAT64) ((double *)g->yp)[i * D + d] = v;
            else ((float *)g->yp)[i * D + d] = (float)v;
            nrm += v * v;
        }
        if (p->dtype == GRAM_FLOAT64) ((double *)g->yy)[i] = nrm;
        else ((float *)g->yy)[i] = (float)nrm;
    }
    return GRAM_OK;
}

gram_status gram__plan_build(gram__plan *p, gram_context *ctx, const gram_kernel *k,
                             gram__op_mode mode, const gram_array *Y, const gram_array *X,
                             const gram_array *W, const gram_array *out)
{
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->k = k;
    p->mode = mode;
    p->dtype = X->dtype;
    p->M = Y->rows;
    p->N = X->rows;
    p->D = X->cols;
    p->V = mode == GRAM_MODE_MATRIX ? 0 : (W ? W->cols : 1) + (mode == GRAM_MODE_ATTENTION);
    p->out = out;
    p->sym = gram__same_view(Y, X);
    p->inf_retry = k->n_ops > 1 && k->nonnegative;
    p->threads = gram__threads(ctx);
    p->Npad = round_up(p->N, GRAM_PANEL);

    gram_arch arch;
    gram_status s = gram__resolve_arch(ctx, &arch);
    if (s) return s;
    p->ukr = gram__ukr_for(arch);
    if (!p->ukr) return gram__fail(ctx, GRAM_EUNSUPPORTED, "architecture %s is not compiled into this build", gram__arch_name(arch));

    /* Metric groups. */
    p->leaf_group = gram__alloc(sizeof(int) * (size_t)(k->n_leaves + 1));
    p->groups = gram__calloc((size_t)k->n_leaves + 1, sizeof(gram__group));
    if (!p->leaf_group || !p->groups) return gram__fail(ctx, GRAM_ENOMEM, "out of memory");
    for (int l = 0; l < k->n_leaves; l++) {
        const gram__leaf *L = &k->leaves[l];
        p->leaf_group[l] = -1;
        if (L->structure == GRAM_STRUCT_CONST) continue;
        /* radial leaves (squared and L1 distances, periodic) are translation-invariant and take
         * centred data; dot products are not, and take the data as they are */
        const int centred = L->structure != GRAM_STRUCT_DOT;
        for (int g = 0; g < p->n_groups; g++) {
            const gram__leaf *G = p->groups[g].leaf;
            int same = G->n_scale == L->n_scale && p->groups[g].centred == centred;
            for (int64_t d = 0; same && d < L->n_scale; d++) same = G->inv_scale[d] == L->inv_scale[d];
            if (same) { p->leaf_group[l] = g; break; }
        }
        if (p->leaf_group[l] < 0) {
            p->leaf_group[l] = p->n_groups;
            p->groups[p->n_groups].centred = centred;
            p->groups[p->n_groups++].leaf = L;
        }
    }
    /* The working memory, asked for as a whole before any of it is allocated or any data scanned:
     * each block alone may fit where all of them do not, and Linux grants blocks it cannot back
     * (the OOM killer then ends the process while they are filled). */
    {
        const size_t es = esize(p->dtype);
        int64_t per_group, nxy, nw = 0, total;
        size_t bytes;
        if (!gram__mul_i64(p->Npad + p->M, p->D + 1, &nxy) || !gram__mul_i64(nxy + 4, p->n_groups, &per_group) ||
            (mode != GRAM_MODE_MATRIX && !gram__mul_i64(p->Npad, p->V, &nw)) ||
            (total = per_group) > INT64_MAX - nw - 4 * p->D - 64 || !gram__bytes(total, es, &bytes) ||
            bytes > SIZE_MAX - 8 * (size_t)(nw + 4 * p->D + 64))
            return gram__fail(ctx, GRAM_EOVERFLOW, "the packed inputs' size overflows (N = %lld, M = %lld, D = %lld)",
                              (long long)p->N, (long long)p->M, (long long)p->D);
        bytes += 8 * (size_t)(nw + 4 * p->D + 64);
        if (!gram__memory_fits(bytes))
            return gram__fail(ctx, GRAM_ENOMEM,
                              "the call needs %.3g GB of working memory for its packed inputs (N = %lld, M = %lld, "
                              "D = %lld), more than the system can provide now",
                              (double)bytes / 1e9, (long long)p->N, (long long)p->M, (long long)p->D);
    }
    /* The centre c, per dimension: the midpoint of X's range rounded to a multiple of the finest
     * ulp among X's coordinates, used only where every x - c is then exact (|x - c| ≤ 2^50 of
     * those ulps; a query y of a similar magnitude subtracts exactly too). Then the packed
     * (x - c)/ℓ carries one rounding relative to |x - c|, at most half the spread of the data,
     * instead of one relative to |x|: timestamps ~1.7e9 with ℓ = 60 keep their differences. Data
     * near the origin (some |x| small next to the spread) keep c = 0 and are packed as before, so
     * centring never makes a subtraction inexact. c depends on X alone (a query's result does not
     * depend on the other queries of the call) and is computed serially. */
    for (int g = 0; g < p->n_groups && !p->center; g++)
        if (p->groups[g].centred) {
            const int64_t D = p->D;
            p->center = gram__calloc(4 * (size_t)D + 1, sizeof(double));
            if (!p->center) return gram__fail(ctx, GRAM_ENOMEM, "out of memory");
            double *lo = p->center + D, *hi = lo + D, *amin = hi + D; /* scratch after the D values */
            for (int64_t d = 0; d < D; d++) lo[d] = amin[d] = INFINITY, hi[d] = -INFINITY;
            /* one pass, in X's row order; a zero row stride (a broadcast view) repeats one row, whose
             * range is the whole's: scanning its 10^12 copies would take minutes before the packing
             * below fails for memory */
            const int64_t rows = X->row_stride == 0 && p->N > 1 ? 1 : p->N;
            for (int64_t j = 0; j < rows; j++)
                for (int64_t d = 0; d < D; d++) {
                    double v = gram__get(X, j, d);
                    lo[d] = v < lo[d] ? v : lo[d];
                    hi[d] = v > hi[d] ? v : hi[d];
                    amin[d] = fabs(v) < amin[d] ? fabs(v) : amin[d];
                }
            for (int64_t d = 0; d < D && p->N > 0; d++) {
                if (!(amin[d] >= DBL_MIN)) continue; /* a zero or subnormal coordinate: the origin is near */
                double u = ldexp(1.0, ilogb(amin[d]) - 52); /* every x is a multiple of u */
                double c = nearbyint((0.5 * lo[d] + 0.5 * hi[d]) / u) * u;
                if (isfinite(c) && hi[d] - c <= ldexp(u, 50) && c - lo[d] <= ldexp(u, 50)) p->center[d] = c;
            }
        }
    for (int g = 0; g < p->n_groups; g++)
        if ((s = pack_group(p, &p->groups[g], Y, X))) return s;

    /* Weights, padded: 0 for a sum, log 0 = -inf for a log-sum. */
    if (mode != GRAM_MODE_MATRIX && p->V > 0) {
        int64_t nw;
        size_t bw;
        if (!gram__mul_i64(p->Npad, p->V, &nw) || !gram__bytes(nw + 1, sizeof(double), &bw))
            return gram__fail(ctx, GRAM_EOVERFLOW, "weights size overflows");
        p->W = gram__alloc(bw);
        if (!p->W) return gram__fail(ctx, GRAM_ENOMEM, "cannot allocate %zu bytes for weights", bw);
        for (int64_t j = 0; j < p->Npad; j++)
            for (int64_t v = 0; v < p->V; v++) {
                double w = j < p->N ? (W && v < W->cols ? gram__get(W, j, v) : 1.0) : 0.0; /* attention's ones column */
                p->W[j * p->V + v] = mode == GRAM_MODE_LOGSUM ? (w > 0 ? log(w) : -INFINITY) : w;
            }
    }
    return GRAM_OK;
}

void gram__plan_free(gram__plan *p)
{
    if (p->groups)
        for (int g = 0; g < p->n_groups; g++) {
            gram__free(p->groups[g].xp);
            gram__free(p->groups[g].yp);
            gram__free(p->groups[g].xx);
            gram__free(p->groups[g].yy);
        }
    gram__free(p->groups);
    gram__free(p->leaf_group);
    gram__free(p->center);
    gram__free(p->W);
    memset(p, 0, sizeof *p);
}

/* ---- one tile ------------------------------------------------------------------------------- */

/* 0 times anything is 0: an exact 0 factor (a zero scale, a compact kernel outside its support)
 * against a factor that overflowed to ±inf (a finite value too large for a double) is 0, not NaN. */
static inline double mul0(double a, double b) { return a == 0.0 || b == 0.0 ? 0.0 : a * b; }

/* One element of a non-leaf op: a (and b) the operands' values, or their logs where the op runs in
 * log space (lg); arg_direct: the operand of a log-space scale or power is a value, not a log
 * (kernel.h's GRAM__OPF_DIRECT); arg_log: the operand of a direct power is a log (GRAM__OPF_LOG: a
 * power p < 1, exp(p·log k)); lc = log c of a positive scale. */
static inline double combine_op(const gram__op *op, int lg, int arg_direct, int arg_log, double lc, double a,
                                double b)
{
    switch (op->kind) {
    case GRAM_OP_ADD:
        if (!lg) return a + b;
        {
            double m = a > b ? a : b;
            /* -inf: both terms 0; +inf: a term overflowed (inf - inf would be NaN) */
            return isinf(m) ? m : m + log1p(exp(-fabs(a - b)));
        }
    case GRAM_OP_MUL: /* log 0 + log(anything, +inf included) is log 0 */
        if (!lg) return mul0(a, b);
        return a == -INFINITY || b == -INFINITY ? -INFINITY : a + b;
    case GRAM_OP_SCALE:
        if (!lg) return mul0(op->c, a);
        return op->c == 0.0 ? -INFINITY : a + lc; /* a log-space scale is never negative (nonneg) */
    case GRAM_OP_POW:
        if (!lg) return arg_log ? exp(op->c * a) : pow(a, op->c);
        return op->c * (arg_direct ? log(fabs(a)) : a); /* log |k|^p; p > 0, so -inf stays -inf */
    default: return a;
    }
}

/* Evaluates the kernel program on rows [r0, r0+mr) × points [c0, c0+n) into stack[0] (values, or
 * log-values when logspace). stack holds stack_depth tiles of GRAM_MR × GRAM_KC. */
static void eval_tile(const gram__plan *p, int logspace, int64_t r0, int64_t mr, int64_t c0, int64_t n,
                      void **stack)
{
    const gram_kernel *k = p->k;
    const int64_t D = p->D, ldt = GRAM_KC;
    int sp = 0;
    for (int o = 0; o < k->n_ops; o++) {
        const gram__op *op = &k->ops[o];
        if (op->kind == GRAM_OP_LEAF) {
            const gram__leaf *L = &k->leaves[op->leaf];
            void *T = stack[sp++];
            const int lg = gram__op_logmode(k, o, logspace);
            if (L->structure == GRAM_STRUCT_CONST) {
                /* one value off the diagonal, another on it (white noise in symmetric calls) */
                double v0 = lg ? gram__leaf_log_const(L, 0) : gram__leaf_const(L, 0);
                double v1 = lg ? gram__leaf_log_const(L, 1) : gram__leaf_const(L, 1);
                for (int64_t i = 0; i < mr; i++) {
                    int64_t jd = p->sym ? r0 + i - c0 : -1; /* the diagonal's column in the tile */
                    if (p->dtype == GRAM_FLOAT64) {
                        double *t = (double *)T + i * ldt;
                        for (int64_t j = 0; j < n; j++) t[j] = v0;
                        if (jd >= 0 && jd < n) t[jd] = v1;
                    } else {
                        float *t = (float *)T + i * ldt;
                        for (int64_t j = 0; j < n; j++) t[j] = (float)v0;
                        if (jd >= 0 && jd < n) t[jd] = (float)v1;
                    }
                }
                continue;
            }
            const gram__group *g = &p->groups[p->leaf_group[op->leaf]];
            if (p->dtype == GRAM_FLOAT64) {
                p->ukr->stat_f64(L->structure, mr, n, D, (const double *)g->yp + r0 * D,
                                 (const double *)g->xp + c0 * D, T, ldt);
                p->ukr->apply_f64(L, lg, mr, n, T, ldt, (const double *)g->yy + r0,
                                  (const double *)g->xx + c0);
            } else {
                p->ukr->stat_f32(L->structure, mr, n, D, (const float *)g->yp + r0 * D,
                                 (const float *)g->xp + c0 * D, T, ldt);
                p->ukr->apply_f32(L, lg, mr, n, T, ldt, (const float *)g->yy + r0,
                                  (const float *)g->xx + c0);
            }
            continue;
        }
        /* Combine: a = stack[sp-2] (or stack[sp-1] for scale and power), b = stack[sp-1]. */
        const int lg = gram__op_logmode(k, o, logspace);
        const int unary = op->kind == GRAM_OP_SCALE || op->kind == GRAM_OP_POW;
        const int arg_lg = unary && gram__op_logmode(k, o - 1, logspace);
        const int arg_direct = unary && lg && !arg_lg, arg_log = unary && !lg && arg_lg;
        const double lc = op->kind == GRAM_OP_SCALE && op->c > 0.0 ? log(op->c) : 0.0;
        if (!lg && op->kind != GRAM_OP_POW && p->dtype == GRAM_FLOAT64) { /* the common cases, in loops that vectorise */
            const double c = op->c;
            for (int64_t i = 0; i < mr; i++) {
                double *a = (double *)stack[sp - (unary ? 1 : 2)] + i * ldt;
                const double *b = (const double *)stack[sp - 1] + i * ldt;
                if (op->kind == GRAM_OP_ADD)
                    for (int64_t j = 0; j < n; j++) a[j] += b[j];
                else if (op->kind == GRAM_OP_MUL)
                    for (int64_t j = 0; j < n; j++) a[j] = mul0(a[j], b[j]);
                else
                    for (int64_t j = 0; j < n; j++) a[j] = mul0(c, a[j]);
            }
            if (!unary) sp--;
            continue;
        }
        void *A = stack[sp - (unary ? 1 : 2)], *Bt = stack[sp - 1];
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < n; j++) {
                double a, b;
                if (p->dtype == GRAM_FLOAT64) {
                    a = ((double *)A)[i * ldt + j];
                    b = ((double *)Bt)[i * ldt + j];
                } else {
                    a = ((float *)A)[i * ldt + j];
                    b = ((float *)Bt)[i * ldt + j];
                }
                double r = combine_op(op, lg, arg_direct, arg_log, lc, a, b);
                if (p->dtype == GRAM_FLOAT64) ((double *)A)[i * ldt + j] = r;
                else ((float *)A)[i * ldt + j] = (float)r;
            }
        if (!unary) sp--;
    }
    if (p->exclude_self) {
        for (int64_t i = 0; i < mr; i++) {
            int64_t j = r0 + i - c0;
            if (j < 0 || j >= n) continue;
            if (p->dtype == GRAM_FLOAT64) ((double *)stack[0])[i * ldt + j] = logspace ? -INFINITY : 0.0;
            else ((float *)stack[0])[i * ldt + j] = logspace ? -INFINITY : 0.0f;
        }
    }
}

/* A single SQDIST leaf summed: the table's fused kernel (ukr.h), where it has one for this leaf,
 * V and (float32) chunk; 0 when it declines. The choice never depends on the thread, so neither do
 * the bits. */
static int fused_partial(const gram__plan *p, int64_t r0, int64_t mr, int64_t c0, int64_t n, const double *W,
                         double *P)
{
    const gram_kernel *k = p->k;
    if (p->mode != GRAM_MODE_SUM || p->exclude_self || k->n_ops != 1 || k->ops[0].kind != GRAM_OP_LEAF) return 0;
    const gram__leaf *L = &k->leaves[k->ops[0].leaf];
    if (L->structure != GRAM_STRUCT_SQDIST) return 0;
    const gram__group *g = &p->groups[p->leaf_group[k->ops[0].leaf]];
    const int64_t D = p->D;
    if (p->dtype == GRAM_FLOAT64 && p->ukr->fused_sum_gemm_f64 &&
        p->ukr->fused_sum_gemm_f64(L, mr, n, D, (const double *)g->yp + r0 * D, (const double *)g->xp + c0 * D,
                                   (const double *)g->yy + r0, (const double *)g->xx + c0, W, p->V, P))
        return 1;
    if (p->dtype == GRAM_FLOAT32 && p->ukr->fused_sum_gemm_f32 &&
        p->ukr->fused_sum_gemm_f32(L, mr, n, D, (const float *)g->yp + r0 * D, (const float *)g->xp + c0 * D,
                                   (const float *)g->yy + r0, (const float *)g->xx + c0, W, p->V, P))
        return 1;
    if (p->dtype == GRAM_FLOAT64)
        return p->ukr->fused_sum_f64 && p->ukr->fused_sum_f64(L, mr, n, D, (const double *)g->yp + r0 * D,
                                                              (const double *)g->xp + c0 * D, W, p->V, P);
    return p->ukr->fused_sum_f32 && p->ukr->fused_sum_f32(L, mr, n, D, (const float *)g->yp + r0 * D,
                                                          (const float *)g->xp + c0 * D, W, p->V, P);
}

/* The same for a log-sum: the table's fused log-sum kernel, or 0 when it declines. */
static int fused_logpartial(const gram__plan *p, int64_t r0, int64_t mr, int64_t c0, int64_t n,
                            const double *LW, double *MX, double *S)
{
    const gram_kernel *k = p->k;
    if (p->mode != GRAM_MODE_LOGSUM || p->exclude_self || k->n_ops != 1 || k->ops[0].kind != GRAM_OP_LEAF) return 0;
    const gram__leaf *L = &k->leaves[k->ops[0].leaf];
    if (L->structure != GRAM_STRUCT_SQDIST) return 0;
    const gram__group *g = &p->groups[p->leaf_group[k->ops[0].leaf]];
    const int64_t D = p->D;
    if (p->dtype == GRAM_FLOAT64)
        return p->ukr->fused_logsum_f64 &&
               p->ukr->fused_logsum_f64(L, mr, n, D, (const double *)g->yp + r0 * D,
                                        (const double *)g->xp + c0 * D, LW, p->V, MX, S);
    return p->ukr->fused_logsum_f32 &&
           p->ukr->fused_logsum_f32(L, mr, n, D, (const float *)g->yp + r0 * D,
                                    (const float *)g->xp + c0 * D, LW, p->V, MX, S);
}

/* Attention's partial of one tile: P[i][v] = m_i (the row's largest log-weight in the chunk, the
 * same for every v) and S[i][v] = Σ_j exp(w_ij - m_i)·[V, 1][j][v], the pair (m, S) that combine()
 * merges as it merges log-sums; the weights' signs do not matter to it. The log-weights are the
 * program's log-values plus the Toeplitz bias, -inf past the diagonal (causal) and past N
 * (padding); a row with no positive weight in the chunk gives m = -inf, S = 0, one whose largest
 * log-weight is +inf (a kernel value that overflowed) m = +inf, which write_rows reports. */
static void attention_partial(const gram__plan *p, int64_t r0, int64_t mr, int64_t c0, int64_t n, void **stack,
                              double *P, double *S)
{
    const int64_t V = p->V, ldt = GRAM_KC;
    if (p->causal && c0 > r0 + mr - 1) { /* wholly above the diagonal */
        for (int64_t e = 0; e < mr * V; e++) P[e] = -INFINITY, S[e] = 0.0;
        return;
    }
    eval_tile(p, 1, r0, mr, c0, n, stack);
    const int f64 = p->dtype == GRAM_FLOAT64;
    double *td = stack[0];
    float *tf = stack[0];
    for (int64_t i = 0; i < mr; i++) {
        int64_t lim = p->N - c0 < n ? p->N - c0 : n;
        if (p->causal && r0 + i - c0 + 1 < lim) lim = r0 + i - c0 + 1;
        if (lim < 0) lim = 0;
        const double *b = p->bias ? p->bias + (c0 - (r0 + i) + p->bias_off) : NULL; /* b[j]: bias of point c0 + j */
        double m = -INFINITY;
        if (f64) {
            double *t = td + i * ldt;
            if (b)
                for (int64_t j = 0; j < lim; j++) t[j] += b[j];
            for (int64_t j = 0; j < lim; j++) m = t[j] > m ? t[j] : m;
            if (isfinite(m))
                for (int64_t j = 0; j < lim; j++) t[j] -= m;
            for (int64_t j = lim; j < n; j++) t[j] = -INFINITY;
            if (isfinite(m)) p->ukr->exp_f64(n, t, t);
            else memset(t, 0, (size_t)n * sizeof(double));
        } else {
            float *t = tf + i * ldt;
            if (b) /* the bias in float64, the sum rounded once */
                for (int64_t j = 0; j < lim; j++) t[j] = (float)((double)t[j] + b[j]);
            float mf = -INFINITY;
            for (int64_t j = 0; j < lim; j++) mf = t[j] > mf ? t[j] : mf;
            m = mf;
            if (isfinite(mf))
                for (int64_t j = 0; j < lim; j++) t[j] -= mf;
            for (int64_t j = lim; j < n; j++) t[j] = -INFINITY;
            if (isfinite(mf)) p->ukr->exp_f32(n, t, t);
            else memset(t, 0, (size_t)n * sizeof(float));
        }
        for (int64_t v = 0; v < V; v++) P[i * V + v] = m;
    }
    const double *W = p->W + c0 * V;
    if (f64) p->ukr->sum_f64(mr, n, td, ldt, W, V, S);
    else {
        /* widened exactly into the next two tiles of the stack (plan_run gives attention 3) */
        double *wd = (double *)stack[1];
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < n; j++) wd[i * ldt + j] = tf[i * ldt + j];
        p->ukr->sum_f64(mr, n, wd, ldt, W, V, S);
    }
}

/* Kernel values of one tile (not log-values). A product, scale or power evaluates its operands in
 * turn, so an intermediate factor can overflow where the value itself is a double
 * (1e308·k1·8·k2 times a small k3: fuzz/corpus/spec/found_product_intermediate_overflow). For a
 * non-negative kernel, a tile holding ±inf is recomputed from its log-values, whose exp overflows
 * only where the value does; tiles without an inf keep their direct bits. */
static void eval_tile_direct(const gram__plan *p, int64_t r0, int64_t mr, int64_t c0, int64_t n, void **stack)
{
    eval_tile(p, 0, r0, mr, c0, n, stack);
    if (!p->inf_retry) return;
    const int f64 = p->dtype == GRAM_FLOAT64;
    int hit = 0; /* a branch-free scan (it vectorises): most tiles hold no inf */
    for (int64_t i = 0; i < mr; i++) {
        if (f64) {
            const double *t = (const double *)stack[0] + i * GRAM_KC;
            for (int64_t j = 0; j < n; j++) hit |= fabs(t[j]) == INFINITY;
        } else {
            const float *t = (const float *)stack[0] + i * GRAM_KC;
            for (int64_t j = 0; j < n; j++) hit |= fabsf(t[j]) == INFINITY;
        }
    }
    if (!hit) return;
    eval_tile(p, 1, r0, mr, c0, n, stack);
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < n; j++)
            if (f64) {
                double *t = (double *)stack[0] + i * GRAM_KC + j;
                *t = exp(*t);
            } else {
                float *t = (float *)stack[0] + i * GRAM_KC + j;
                *t = (float)exp((double)*t);
            }
}

/* Partial result of one tile into P (mr × V) (and S for logsum). */
static void tile_partial(const gram__plan *p, int64_t r0, int64_t mr, int64_t c0, int64_t n, void **stack,
                         double *P, double *S)
{
    if (p->mode == GRAM_MODE_ATTENTION) {
        attention_partial(p, r0, mr, c0, n, stack, P, S);
        return;
    }
    int logspace = p->mode == GRAM_MODE_LOGSUM;
    const double *W = p->W + c0 * p->V;
    if (logspace ? fused_logpartial(p, r0, mr, c0, n, W, P, S) : fused_partial(p, r0, mr, c0, n, W, P)) return;
    if (logspace) eval_tile(p, 1, r0, mr, c0, n, stack);
    else eval_tile_direct(p, r0, mr, c0, n, stack);
    /* The last chunk's padding (copies of the last point, weight 0) adds exactly nothing: where the
     * kernel overflowed to ±inf at the last point, inf·0 would make the sum NaN instead of ±inf. A
     * log-space sum pads log w = -inf, which its microkernel already skips. */
    if (!logspace && c0 + n > p->N) {
        const int64_t j0 = p->N - c0 > 0 ? p->N - c0 : 0;
        for (int64_t i = 0; i < mr; i++) {
            if (p->dtype == GRAM_FLOAT64) memset((double *)stack[0] + i * GRAM_KC + j0, 0, (size_t)(n - j0) * sizeof(double));
            else memset((float *)stack[0] + i * GRAM_KC + j0, 0, (size_t)(n - j0) * sizeof(float));
        }
    }
    if (p->dtype == GRAM_FLOAT64) {
        if (logspace) p->ukr->logsum_f64(mr, n, stack[0], GRAM_KC, W, p->V, P, S);
        else p->ukr->sum_f64(mr, n, stack[0], GRAM_KC, W, p->V, P);
    } else {
        if (logspace) p->ukr->logsum_f32(mr, n, stack[0], GRAM_KC, W, p->V, P, S);
        else p->ukr->sum_f32(mr, n, stack[0], GRAM_KC, W, p->V, P);
    }
}

/* Attention's merge: combine()'s for log-sums, with the V entries of a row sharing their maximum
 * (attention_partial writes it to each), so one exp per row; the same values as combine(). */
static void combine_rows(int64_t mr, int64_t V, double *acc_m, double *acc_s, const double *P, const double *S)
{
    for (int64_t i = 0; i < mr; i++) {
        double *am = acc_m + i * V, *as = acc_s + i * V;
        const double m = am[0], mc = P[i * V];
        const double *sc = S + i * V;
        if (mc == INFINITY || m == INFINITY) {
            for (int64_t v = 0; v < V; v++) am[v] = INFINITY, as[v] = 1.0;
        } else if (mc == -INFINITY) {
            continue;
        } else if (m == -INFINITY) {
            for (int64_t v = 0; v < V; v++) am[v] = mc, as[v] = sc[v];
        } else if (mc > m) {
            const double f = exp(m - mc);
            for (int64_t v = 0; v < V; v++) as[v] = as[v] * f + sc[v], am[v] = mc;
        } else {
            const double f = exp(mc - m);
            for (int64_t v = 0; v < V; v++) as[v] += sc[v] * f;
        }
    }
}

/* acc ⊕= partial, in log space as a (max, scaled sum) pair. */
static void combine(int logspace, int64_t cnt, double *acc_m, double *acc_s, const double *P, const double *S)
{
    for (int64_t e = 0; e < cnt; e++) {
        if (!logspace) { acc_m[e] += P[e]; continue; }
        double m = acc_m[e], mc = P[e];
        /* a term that overflowed (a log-value of +inf) makes the sum +inf; its chunk's S is NaN */
        if (mc == INFINITY || m == INFINITY) {
            acc_m[e] = INFINITY;
            acc_s[e] = 1.0;
            continue;
        }
        if (mc == -INFINITY) continue;
        if (m == -INFINITY) { acc_m[e] = mc; acc_s[e] = S[e]; }
        else if (mc > m) { acc_s[e] = acc_s[e] * exp(m - mc) + S[e]; acc_m[e] = mc; }
        else acc_s[e] += S[e] * exp(mc - m);
    }
}

/* The first row (of all calls' rows, whichever thread finds it) into *slot. */
static void note_row(int64_t *slot, int64_t row)
{
#pragma omp critical(gram_attention_rows)
    if (*slot < 0 || row < *slot) *slot = row;
}

static void write_rows(const gram__plan *p, int64_t r0, int64_t mr, const double *acc_m, const double *acc_s)
{
    if (p->mode == GRAM_MODE_ATTENTION) {
        const int64_t V = p->V, dv = V - 1;
        for (int64_t i = 0; i < mr; i++) {
            const double m = acc_m[i * V], den = acc_s[i * V + dv];
            /* den ≥ 1 where m is finite: the largest weight contributes exp(0) to it */
            int bad = m == INFINITY || (m > -INFINITY && !(den >= 1.0 && den < INFINITY));
            for (int64_t v = 0; v < dv && !bad && m > -INFINITY; v++) {
                const double r = acc_s[i * V + v] / den;
                bad = !isfinite(r);
                gram__put(p->out, r0 + i, v, r);
            }
            if (bad || m == -INFINITY) {
                for (int64_t v = 0; v < dv; v++) gram__put(p->out, r0 + i, v, 0.0);
                note_row(bad ? p->att_inf : p->att_empty, r0 + i);
            }
        }
        return;
    }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t v = 0; v < p->V; v++) {
            double r = acc_m[i * p->V + v];
            if (p->mode == GRAM_MODE_LOGSUM) r = r == -INFINITY ? -INFINITY : r + log(acc_s[i * p->V + v]);
            gram__put(p->out, r0 + i, v, r);
        }
}

static void write_matrix_tile(const gram__plan *p, int64_t r0, int64_t mr, int64_t c0, int64_t n, const void *T)
{
    int64_t nreal = c0 + n <= p->N ? n : p->N - c0;
    const gram_array *o = p->out;
    if (p->dtype == GRAM_FLOAT64 && o->dtype == GRAM_FLOAT64 && o->col_stride == 1) {
        for (int64_t i = 0; i < mr; i++)
            memcpy((double *)o->data + (r0 + i) * o->row_stride + c0, (const double *)T + i * GRAM_KC,
                   (size_t)nreal * sizeof(double));
        return;
    }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nreal; j++) {
            double v = p->dtype == GRAM_FLOAT64 ? ((const double *)T)[i * GRAM_KC + j]
                                                 : (double)((const float *)T)[i * GRAM_KC + j];
            gram__put(p->out, r0 + i, c0 + j, v);
        }
}

/* ---- threads -------------------------------------------------------------------------------- */

/* ---- Gram blocks: the fused path ------------------------------------------------------------ */

/* A Gram block of one SQDIST leaf the table's fused_matrix handles, written straight into out by
 * the kernel (no tile in memory, no copy-out) when out is row-major (col_stride 1) or, for K(Y, X)
 * only, column-major (row_stride 1; the kernel writes the transpose). The other cases run the
 * tile program below.
 *
 * Tasks are blocks of MX_H rows against every chunk of GRAM_KC points. When Y is X only the
 * blocks on and below the diagonal are computed: each block below it is written twice, as itself
 * and transposed into the rows above the diagonal (the kernel's U), and the MX_H × MX_H blocks on
 * the diagonal are computed whole; every element is written exactly once, by one task. A kernel
 * value depends only on its two points and the squared distance is symmetric bit for bit, so the
 * result is exactly symmetric, equal bit for bit to the unmirrored computation, and independent
 * of the partition and of the thread count. With lower_only, nothing is mirrored (only the
 * diagonal blocks' upper parts are written above the diagonal).
 *
 * Alignment. Large outputs are stored with non-temporal stores, which need every 64-byte line to
 * be written whole. Where out's leading dimension is a multiple of a line, the lines are the same
 * columns in every row, and the packed data are shifted by sh points (packed index = point + sh;
 * the first sh slots repeat point 0) so that chunks and panels start on line boundaries; the row
 * blocks start there too (rows k·MX_H - sh), so the transposed copies also fill whole lines.
 * Results never depend on the shift, only the speed. */

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define MX_FENCE() _mm_sfence()
#else
#define MX_FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

#define MX_H 64                                    /* rows per task; divides GRAM_KC */
#define MX_STREAM_MIN_BYTES ((size_t)32 << 20) /* outputs at least this large bypass the caches */

typedef struct mx_plan {
    const gram__plan *p;
    const gram__leaf *L;
    const void *xs, *ys; /* packed X shifted by sh; Y rows, scaled */
    char *base;          /* out's data */
    size_t oes;          /* out's element size */
    int64_t ld;          /* element (i, j) of out at i·ld + j, or at j·ld + i when trans */
    int trans, flags;
    int64_t sh;          /* packed index of point j: j + sh */
} mx_plan;

static int mx_call(const mx_plan *m, int64_t r0, int64_t mr, int64_t j0, int64_t n, const void *xp, void *T,
                   void *U)
{
    const gram__plan *p = m->p;
    const int64_t D = p->D;
    if (p->dtype == GRAM_FLOAT64)
        return p->ukr->fused_matrix_f64(m->L, mr, j0, n, D, (const double *)m->ys + r0 * D, xp, T, m->ld, U,
                                         m->ld, m->flags);
    return p->ukr->fused_matrix_f32(m->L, mr, j0, n, D, (const float *)m->ys + r0 * D, xp, T, m->ld, U, m->ld,
                                    m->flags);
}

/* Rows [r0, r0+mr) × packed columns [c0+j0, c0+n) (c0 a multiple of GRAM_PANEL): as the block
 * (direct) and / or transposed (mirror), in out's orientation. */
static void mx_block(const mx_plan *m, int64_t r0, int64_t mr, int64_t c0, int64_t j0, int64_t n, int direct,
                     int mirror)
{
    const int64_t col = c0 + j0 - m->sh; /* the first point written */
    const size_t es = esize(m->p->dtype);
    /* element (r0, col) of the block at row-major and at column-major place: out's (r0, col) and
     * (col, r0) in one orientation or the other */
    void *rm = m->base + m->oes * (size_t)(r0 * m->ld + col), *cm = m->base + m->oes * (size_t)(col * m->ld + r0);
    void *T = (m->trans ? mirror : direct) ? rm : NULL, *U = (m->trans ? direct : mirror) ? cm : NULL;
    mx_call(m, r0, mr, j0, n, (const char *)m->xs + es * (size_t)(c0 * m->p->D), T, U);
}

/* 1 when it ran (status in *st), 0 when the fused path does not apply. */
static int matrix_fused(gram__plan *p, gram_status *st)
{
    const gram_kernel *k = p->k;
    const gram_array *o = p->out;
    if (k->n_ops != 1 || k->ops[0].kind != GRAM_OP_LEAF) return 0;
    const gram__leaf *L = &k->leaves[k->ops[0].leaf];
    if (L->structure != GRAM_STRUCT_SQDIST) return 0;
    if (p->dtype == GRAM_FLOAT64 ? !p->ukr->fused_matrix_f64 : !p->ukr->fused_matrix_f32) return 0;
    const gram__group *g = &p->groups[p->leaf_group[k->ops[0].leaf]];
    mx_plan m = {p, L, NULL, g->yp, (char *)o->data, esize(o->dtype), 0, 0, 0, 0};
    if (!mx_call(&m, 0, 0, 0, GRAM_PANEL, g->xp, NULL, NULL)) return 0; /* the kernel declines L */
    const int sym = p->sym, lower = p->lower_only;
    /* out's (i, j) at i·ld + j (rows of the block are contiguous) or at i + j·ld (trans) */
    if (o->col_stride == 1 && (p->M == 1 || o->row_stride >= p->N)) m.ld = p->M == 1 ? p->N : o->row_stride;
    else if (o->row_stride == 1 && (p->N == 1 || o->col_stride >= p->M)) m.ld = p->N == 1 ? p->M : o->col_stride, m.trans = 1;
    else return 0;

    const int64_t M = p->M, N = p->N, D = p->D, H = MX_H;
    const int64_t LE = 64 / (int64_t)m.oes; /* elements per line */
    int64_t a = 0;                          /* out's first element's place in its line */
    if (m.ld % LE == 0 && (uintptr_t)o->data % m.oes == 0) a = (int64_t)(((uintptr_t)o->data / m.oes) % (uint64_t)LE);
    m.sh = sym || !m.trans ? a : 0;
    const int64_t rsh = sym || m.trans ? a : 0; /* row block k: rows [k·H - rsh, (k+1)·H - rsh) */
    m.flags = o->dtype == GRAM_FLOAT64 ? GRAM__MX_F64 : 0;
    if ((size_t)M * (size_t)N * m.oes >= MX_STREAM_MIN_BYTES) m.flags |= GRAM__MX_STREAM;

    /* X packed again with the shift (padding repeats the first and the last point). */
    const int64_t Ns = N + m.sh, Nspad = round_up(Ns, GRAM_PANEL);
    void *xs = NULL;
    if (m.sh == 0) m.xs = g->xp;
    else {
        const size_t es = esize(p->dtype);
        xs = gram__alloc(es * (size_t)(Nspad * D + 1));
        if (!xs) {
            *st = gram__fail(p->ctx, GRAM_ENOMEM, "cannot allocate packed data");
            return 1;
        }
        for (int64_t q = 0; q < Nspad; q++) {
            int64_t j = q < m.sh ? 0 : q - m.sh < N ? q - m.sh : N - 1;
            for (int64_t d = 0; d < D; d++) {
                size_t to = (size_t)((q / GRAM_PANEL) * D * GRAM_PANEL + d * GRAM_PANEL + q % GRAM_PANEL);
                size_t from = (size_t)((j / GRAM_PANEL) * D * GRAM_PANEL + d * GRAM_PANEL + j % GRAM_PANEL);
                if (p->dtype == GRAM_FLOAT64) ((double *)xs)[to] = ((const double *)g->xp)[from];
                else ((float *)xs)[to] = ((const float *)g->xp)[from];
            }
        }
        m.xs = xs;
    }

    const int64_t K = (M + rsh + H - 1) / H, C = (Ns + GRAM_KC - 1) / GRAM_KC;
    gram__progress ps = {0, 0, 0};
    if (sym)
        for (int64_t b = 0; b < K; b++) ps.total += (b * H + GRAM_KC - 1) / GRAM_KC + 1;
    else ps.total = K * C;
    int nt = gram__team_size(p->threads < K ? p->threads : (int)K);

#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t t = 0; t < K; t++) {
            const int64_t b = sym ? K - 1 - t : t; /* the longest blocks first */
            const int64_t r0 = b * H - rsh < 0 ? 0 : b * H - rsh, r1 = (b + 1) * H - rsh < M ? (b + 1) * H - rsh : M;
            if (!sym) {
                for (int64_t c = 0; c < C && !gram__progress_cancelled(&ps); c++) {
                    const int64_t c0 = c * GRAM_KC, n = Ns - c0 < GRAM_KC ? Ns - c0 : GRAM_KC;
                    mx_block(&m, r0, r1 - r0, c0, c == 0 ? m.sh : 0, n, 1, 0);
                    gram__progress_report(p->ctx, &ps, 1);
                }
                continue;
            }
            /* below the diagonal: the chunks left of packed column b·H, cut there */
            for (int64_t c0 = 0; c0 < b * H && !gram__progress_cancelled(&ps); c0 += GRAM_KC) {
                const int64_t n = b * H - c0 < GRAM_KC ? b * H - c0 : GRAM_KC;
                mx_block(&m, r0, r1 - r0, c0, c0 == 0 ? m.sh : 0, n, 1, !lower);
                gram__progress_report(p->ctx, &ps, 1);
            }
            /* the diagonal block: points [r0, r1) = packed [b·H + j0, b·H + n) */
            if (!gram__progress_cancelled(&ps)) {
                mx_block(&m, r0, r1 - r0, b * H, b == 0 ? m.sh : 0, r1 + m.sh - b * H, 1, 0);
                gram__progress_report(p->ctx, &ps, 1);
            }
        }
        if (m.flags & GRAM__MX_STREAM) MX_FENCE(); /* the non-temporal stores, before the barrier */
    }
    gram__free(xs);
    *st = ps.cancelled ? gram__fail(p->ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld blocks",
                                    (long long)ps.done, (long long)ps.total)
                       : GRAM_OK;
    return 1;
}

gram_status gram__plan_run(gram__plan *p)
{
    const int64_t M = p->M, V = p->V;
    const int64_t R = (M + GRAM_MR - 1) / GRAM_MR, C = (p->Npad + GRAM_KC - 1) / GRAM_KC;
    const int logspace = p->mode == GRAM_MODE_LOGSUM || p->mode == GRAM_MODE_ATTENTION; /* (max, sum) pairs */
    const size_t es = esize(p->dtype);
    int depth = p->k->stack_depth > 0 ? p->k->stack_depth : 1;
    if (p->mode == GRAM_MODE_ATTENTION && p->dtype == GRAM_FLOAT32 && depth < 3) depth = 3;

    if (M == 0) return GRAM_OK;
    if (p->mode != GRAM_MODE_MATRIX && (V == 0)) return GRAM_OK;
    if (p->N == 0) {
        if (p->mode == GRAM_MODE_ATTENTION) {
            for (int64_t i = 0; i < M; i++)
                for (int64_t v = 0; v + 1 < V; v++) gram__put(p->out, i, v, 0.0);
            *p->att_empty = 0;
            return GRAM_OK;
        }
        if (p->mode != GRAM_MODE_MATRIX)
            for (int64_t i = 0; i < M; i++)
                for (int64_t v = 0; v < V; v++) gram__put(p->out, i, v, logspace ? -INFINITY : 0.0);
        return GRAM_OK;
    }
    gram_status mst;
    if (p->mode == GRAM_MODE_MATRIX && matrix_fused(p, &mst)) return mst;

    /* Which split: whole rows per task when there are enough row tiles; else (row tile, chunk)
     * tasks with partials stored and reduced in chunk order. Both give the same bits. */
    const int by_rows = p->mode != GRAM_MODE_MATRIX && (R >= 4 * (int64_t)p->threads || C == 1);
    int nt = p->threads;
    /* By rows, a task is G consecutive row tiles run chunk by chunk (each chunk against the G tiles
     * in turn), so a chunk of packed data is read from memory once per G tiles and then from cache:
     * at large D a chunk is up to hundreds of KiB, and with one tile per task every tile would
     * stream all of X from memory. Each row still adds its chunks' partials in chunk order, so the
     * bits do not depend on G. G shrinks where it would leave fewer than 8 tasks per thread. */
    int64_t G = by_rows ? R / (8 * (int64_t)nt) : 1;
    G = G < 1 ? 1 : G > GRAM_ROW_GROUP ? GRAM_ROW_GROUP : G;

    /* Per-thread scratch: the program stack, partial P/S and row accumulators. */
    const size_t tile_bytes = (size_t)GRAM_MR * GRAM_KC * es;
    const size_t mv = (size_t)GRAM_MR * (size_t)(V > 0 ? V : 1);
    if ((size_t)V > (SIZE_MAX / 64) / GRAM_MR / GRAM_ROW_GROUP)
        return gram__fail(p->ctx, GRAM_EOVERFLOW, "V too large");
    size_t per_thread = (size_t)depth * tile_bytes + (2 + 2 * (size_t)G) * mv * sizeof(double) + 64;
    unsigned char *scratch = gram__alloc(per_thread * (size_t)nt);
    double *partials = NULL, *partials_s = NULL;
    int64_t n_tasks = by_rows ? (R + G - 1) / G : R * C;
    if (!scratch) return gram__fail(p->ctx, GRAM_ENOMEM, "cannot allocate thread scratch");
    if (!by_rows && p->mode != GRAM_MODE_MATRIX) {
        int64_t cnt;
        size_t b;
        if (!gram__mul_i64(R * C, (int64_t)mv, &cnt) || !gram__bytes(cnt, sizeof(double), &b)) {
            gram__free(scratch);
            return gram__fail(p->ctx, GRAM_EOVERFLOW, "partial sums size overflows");
        }
        partials = gram__alloc(b);
        partials_s = logspace ? gram__alloc(b) : NULL;
        if (!partials || (logspace && !partials_s)) {
            gram__free(scratch);
            gram__free(partials);
            gram__free(partials_s);
            return gram__fail(p->ctx, GRAM_ENOMEM, "cannot allocate %zu bytes of partial sums", b);
        }
    }

    gram__progress ps = {0, by_rows ? R * C : R * C, 0};

    /* No more threads than tasks: a small call (one query row, say) would otherwise start and wait
     * at the barrier for threads that get nothing (measured: a one-point KDE 4-6 ms -> 0.14 ms).
     * The scratch above is per thread of nt, so a smaller team fits in it. */
    if ((int64_t)nt > n_tasks) nt = n_tasks < 1 ? 1 : (int)n_tasks;
    nt = gram__team_size(nt);
#pragma omp parallel num_threads(nt)
    {
        unsigned char *mine = scratch + per_thread * (size_t)omp_get_thread_num();
        void *stack[64];
        int dd = depth < 64 ? depth : 64;
        for (int s = 0; s < dd; s++) stack[s] = mine + (size_t)s * tile_bytes;
        double *P = (double *)(mine + (size_t)depth * tile_bytes);
        double *S = P + mv, *acc_m = S + mv, *acc_s = acc_m + (size_t)G * mv;

#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < n_tasks; task++) {
            if (gram__progress_cancelled(&ps)) continue;
            if (by_rows) {
                int64_t t0 = task * G, t1 = t0 + G < R ? t0 + G : R;
                for (size_t e = 0; e < (size_t)(t1 - t0) * mv; e++) {
                    acc_m[e] = logspace ? -INFINITY : 0.0;
                    acc_s[e] = 0.0;
                }
                for (int64_t c = 0; c < C; c++) {
                    int64_t c0 = c * GRAM_KC, n = p->Npad - c0 < GRAM_KC ? p->Npad - c0 : GRAM_KC;
                    for (int64_t t = t0; t < t1; t++) {
                        int64_t r0 = t * GRAM_MR, mr = M - r0 < GRAM_MR ? M - r0 : GRAM_MR;
                        size_t a = (size_t)(t - t0) * mv;
                        tile_partial(p, r0, mr, c0, n, stack, P, S);
                        if (p->mode == GRAM_MODE_ATTENTION) combine_rows(mr, V, acc_m + a, acc_s + a, P, S);
                        else combine(logspace, mr * V, acc_m + a, acc_s + a, P, S);
                    }
                }
                for (int64_t t = t0; t < t1; t++) {
                    int64_t r0 = t * GRAM_MR, mr = M - r0 < GRAM_MR ? M - r0 : GRAM_MR;
                    size_t a = (size_t)(t - t0) * mv;
                    write_rows(p, r0, mr, acc_m + a, acc_s + a);
                }
                gram__progress_report(p->ctx, &ps, C * (t1 - t0));
            } else {
                int64_t r = task / C, c = task % C;
                int64_t r0 = r * GRAM_MR, mr = M - r0 < GRAM_MR ? M - r0 : GRAM_MR;
                int64_t c0 = c * GRAM_KC, n = p->Npad - c0 < GRAM_KC ? p->Npad - c0 : GRAM_KC;
                if (p->mode == GRAM_MODE_MATRIX) {
                    if (p->lower_only && c0 > r0 + mr - 1) { /* wholly above the diagonal */
                        gram__progress_report(p->ctx, &ps, 1);
                        continue;
                    }
                    eval_tile_direct(p, r0, mr, c0, n, stack);
                    write_matrix_tile(p, r0, mr, c0, n, stack[0]);
                } else {
                    tile_partial(p, r0, mr, c0, n, stack, partials + (size_t)task * mv,
                                 logspace ? partials_s + (size_t)task * mv : NULL);
                }
                gram__progress_report(p->ctx, &ps, 1);
            }
        }
    }

    gram_status st = GRAM_OK;
    if (ps.cancelled) st = gram__fail(p->ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld blocks",
                                      (long long)ps.done, (long long)ps.total);
    else if (partials) {
        double *acc_m = (double *)scratch, *acc_s = acc_m + mv;
        for (int64_t r = 0; r < R; r++) {
            int64_t r0 = r * GRAM_MR, mr = M - r0 < GRAM_MR ? M - r0 : GRAM_MR;
            for (size_t e = 0; e < mv; e++) { acc_m[e] = logspace ? -INFINITY : 0.0; acc_s[e] = 0.0; }
            for (int64_t c = 0; c < C; c++) {
                size_t t = (size_t)(r * C + c) * mv;
                if (p->mode == GRAM_MODE_ATTENTION) combine_rows(mr, V, acc_m, acc_s, partials + t, partials_s + t);
                else combine(logspace, mr * V, acc_m, acc_s, partials + t, logspace ? partials_s + t : NULL);
            }
            write_rows(p, r0, mr, acc_m, acc_s);
        }
    }
    gram__free(scratch);
    gram__free(partials);
    gram__free(partials_s);
    return st;
}

/* ---- sums over sub-ranges of a packed X ------------------------------------------------------ */

gram_status gram__packed_create(gram__packed *pk, gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                const gram_array *X, const gram_array *W)
{
    memset(pk, 0, sizeof *pk);
    gram_status s = gram__plan_build(&pk->plan, ctx, k, GRAM_MODE_SUM, Y, X, W, NULL);
    if (s) {
        gram__plan_free(&pk->plan);
        return s;
    }
    const int depth = k->stack_depth > 0 ? k->stack_depth : 1;
    /* the program's stack of tiles, then one tile's partial P (GRAM_MR × V); tiles stay 64-byte
     * aligned when scratch is */
    pk->scratch = (size_t)depth * GRAM_MR * GRAM_KC * esize(pk->plan.dtype) +
                  (size_t)GRAM_MR * (size_t)(pk->plan.V > 0 ? pk->plan.V : 1) * sizeof(double) + 64;
    return GRAM_OK;
}

void gram__packed_sum(const gram__packed *pk, int64_t r0, int64_t r1, int64_t j0, int64_t j1, void *scratch,
                      double *acc)
{
    const gram__plan *p = &pk->plan;
    const int64_t V = p->V, N = p->N;
    if (r1 <= r0 || j1 <= j0 || V == 0) return;
    const size_t tile_bytes = (size_t)GRAM_MR * GRAM_KC * esize(p->dtype);
    const int depth = p->k->stack_depth > 0 ? p->k->stack_depth : 1;
    void *stack[64];
    for (int s = 0; s < depth && s < 64; s++) stack[s] = (unsigned char *)scratch + (size_t)s * tile_bytes;
    double *P = (double *)((unsigned char *)scratch + (size_t)depth * tile_bytes);
    /* whole panels: the last one of X is padded by the plan (weight 0) */
    const int64_t end = j1 >= N ? p->Npad : j1;
    for (int64_t t0 = r0; t0 < r1; t0 += GRAM_MR) {
        const int64_t mr = r1 - t0 < GRAM_MR ? r1 - t0 : GRAM_MR;
        double *a = acc + (t0 - r0) * V;
        for (int64_t c0 = j0; c0 < end; c0 += GRAM_KC) {
            const int64_t n = end - c0 < GRAM_KC ? end - c0 : GRAM_KC;
            tile_partial(p, t0, mr, c0, n, stack, P, NULL);
            for (int64_t e = 0; e < mr * V; e++) a[e] += P[e];
        }
    }
}

void gram__packed_free(gram__packed *pk)
{
    gram__plan_free(&pk->plan);
    memset(pk, 0, sizeof *pk);
}

/* ---- Gram blocks with their gradient -------------------------------------------------------- */

#define GRAD_B 128 /* pairs per block of the gradient program */

/* Y and X as contiguous float64 rows, unscaled: the gradient program takes differences before it
 * scales them, so it needs no centring. */
static double *rows_f64(const gram_array *A)
{
    int64_t n;
    size_t b;
    if (!gram__mul_i64(A->rows, A->cols, &n) || !gram__bytes(n + 1, sizeof(double), &b)) return NULL;
    double *r = gram__alloc(b);
    if (!r) return NULL;
    for (int64_t i = 0; i < A->rows; i++)
        for (int64_t d = 0; d < A->cols; d++) r[i * A->cols + d] = gram__get(A, i, d);
    return r;
}

gram_status gram__matrix_grad_run(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                  const gram_array *X, int sym, double *grad)
{
    const int64_t M = Y->rows, N = X->rows, D = X->cols, P = k->n_hyper;
    if (M == 0 || N == 0 || P == 0) return GRAM_OK;
    gram_arch arch;
    gram_status s = gram__resolve_arch(ctx, &arch);
    if (s) return s;
    const gram__ukr *ukr = gram__ukr_for(arch);
    if (!ukr) return gram__fail(ctx, GRAM_EUNSUPPORTED, "architecture %s is not compiled into this build", gram__arch_name(arch));
    double *xr = rows_f64(X), *yr = sym ? xr : rows_f64(Y);
    if (!xr || !yr) {
        gram__free(xr);
        if (!sym) gram__free(yr);
        return gram__fail(ctx, GRAM_ENOMEM, "cannot allocate %lld×%lld float64 copies of the inputs",
                          (long long)(M + N), (long long)D);
    }
    gram__plan pl;
    memset(&pl, 0, sizeof pl);
    pl.ctx = ctx;
    gram__progress ps = {0, M, 0};
    int nt = gram__threads(ctx), nomem = 0;
    if (nt > M) nt = (int)M;

#pragma omp parallel num_threads(nt)
    {
        gram__grad_ws ws;
        int ok = gram__grad_ws_init(&ws, k, GRAD_B, ukr->exp_f64) == GRAM_OK;
        if (!ok) {
#pragma omp atomic write
            nomem = 1;
#pragma omp atomic write
            ps.cancelled = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < M; i++) {
            if (!ok || gram__progress_cancelled(&ps)) continue;
            for (int64_t j0 = 0; j0 < N; j0 += GRAD_B) {
                int B = N - j0 < GRAD_B ? (int)(N - j0) : GRAD_B;
                int same = sym && i >= j0 && i < j0 + B ? (int)(i - j0) : -1;
                gram__kernel_grad_pairs(k, &ws, D, yr + i * D, xr + j0 * D, D, B, same,
                                        grad + ((size_t)i * (size_t)N + (size_t)j0) * (size_t)P, P);
            }
            gram__progress_report(pl.ctx, &ps, 1);
        }
        if (ok) gram__grad_ws_free(&ws);
    }
    gram__free(xr);
    if (!sym) gram__free(yr);
    if (nomem) return gram__fail(ctx, GRAM_ENOMEM, "cannot allocate the gradient's work space");
    if (ps.cancelled)
        return gram__fail(ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld rows of the gradient",
                          (long long)ps.done, (long long)ps.total);
    return GRAM_OK;
}
