/* Kernel descriptors: the typed constructor, composites, copies and hyperparameters.
 *
 * A kernel owns everything it points to (ops, leaves, each leaf's arrays, the hyperparameter
 * names), so every constructor deep-copies its operands and kernels stay independent and
 * immutable.
 *
 * Hyperparameter order. Hyperparameters are numbered in the order their owners appear in the
 * postfix program: a LEAF op contributes its lengthscale(s) and then its positive non-integer
 * family parameters (gram.h's parameter order), a SCALE op with c > 0 contributes log c. Leaves
 * therefore come left to right as in the spec, and a scale comes right after the hyperparameters
 * of the expression it multiplies: "2*matern52(lengthscale=[1,2,3]) + white(0.1)" gives
 * leaf1.lengthscale[0..2], scale1, leaf2.noise. (The canonical spec prints a scale after its
 * operand, "matern52(...)*2", so its text lists hyperparameters in exactly this order.) A useful
 * consequence the gradient code relies on: the hyperparameters of every sub-expression form one
 * contiguous index range.
 *
 * Names: "leafK.<param>", with "leafK.lengthscale[d]" for ARD lengthscales and "scaleK" for a
 * scale; K counts leaves (resp. scale ops) from 1 in program order, including those that have no
 * hyperparameter.
 */
#include "kernel.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Beyond these sizes a kernel is certainly a mistake (or an attack on the parser). */
#define GRAM__MAX_OPS (1 << 26)
#define GRAM__MAX_LENGTHSCALES ((int64_t)1 << 31)

static const struct {
    int n;
    const char *name[GRAM__MAX_PARAMS];
    double def[GRAM__MAX_PARAMS];
} PARAMS[GRAM_FAMILY_COUNT] = {
    [GRAM_RATIONAL_QUADRATIC] = {1, {"alpha"}, {1.0}},
    [GRAM_PERIODIC] = {1, {"period"}, {1.0}},
    [GRAM_LINEAR] = {1, {"sigma0"}, {0.0}},
    [GRAM_POLYNOMIAL] = {3, {"degree", "gamma", "coef0"}, {3.0, 1.0, 1.0}},
    [GRAM_CONSTANT] = {1, {"value"}, {1.0}},
    [GRAM_WHITE] = {1, {"noise"}, {1.0}},
    [GRAM_MATERN] = {1, {"nu"}, {1.5}},
    [GRAM_SIGMOID] = {2, {"gamma", "coef0"}, {1.0, 1.0}},
    [GRAM_ARCCOS] = {1, {"degree"}, {1.0}},
};

static int family_ok(gram_family f) { return (int)f >= 0 && (int)f < GRAM_FAMILY_COUNT; }

int gram__family_n_params(gram_family f) { return family_ok(f) ? PARAMS[f].n : 0; }

const char *gram__family_param_name(gram_family f, int i)
{
    return family_ok(f) && i >= 0 && i < PARAMS[f].n ? PARAMS[f].name[i] : NULL;
}

double gram__family_param_default(gram_family f, int i)
{
    return family_ok(f) && i >= 0 && i < PARAMS[f].n ? PARAMS[f].def[i] : 0.0;
}

/* ---- leaves ----------------------------------------------------------------------------------- */

void gram__leaf_free(gram__leaf *L)
{
    if (!L) return;
    free(L->inv_scale);
    free(L->lengthscale);
    free(L->ls_lo);
    free(L->ls_hi);
    L->inv_scale = L->lengthscale = L->ls_lo = L->ls_hi = NULL;
}

/* A parameter that must lie in (0, ∞) (positive) or [0, ∞). */
static gram_status check_param(gram_context *ctx, const char *where, gram_family f,
                               const char *name, double v, int positive)
{
    if (!isfinite(v))
        return gram__fail(ctx, GRAM_EINVAL, "%s%s: %s must be finite, got %g", where,
                          gram__family_name(f), name, v);
    if (positive ? !(v > 0.0) : !(v >= 0.0))
        return gram__fail(ctx, GRAM_EINVAL, "%s%s: %s must be %s 0, got %g", where,
                          gram__family_name(f), name, positive ? ">" : ">=", v);
    return GRAM_OK;
}

gram_status gram__leaf_init(gram_context *ctx, const char *where, gram__leaf *L, gram_family f,
                            int64_t n_ls, const double *ls, int n_params, const double *params)
{
    gram_status s;
    if (!where) where = "";
    if (!L) return gram__fail(ctx, GRAM_EINVAL, "%sleaf is NULL", where);
    memset(L, 0, sizeof *L);
    if (!family_ok(f))
        return gram__fail(ctx, GRAM_EINVAL, "%sunknown kernel family %d (expected 0..%d)", where,
                          (int)f, GRAM_FAMILY_COUNT - 1);
    const char *name = gram__family_name(f);
    gram_structure st = gram__family_structure(f);
    int np = PARAMS[f].n;

    if (n_ls < 0)
        return gram__fail(ctx, GRAM_EINVAL, "%s%s: n_lengthscales must be >= 0, got %lld", where,
                          name, (long long)n_ls);
    if (n_ls > GRAM__MAX_LENGTHSCALES)
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s%s: %lld lengthscales is too many", where, name,
                          (long long)n_ls);
    if (n_ls > 0 && !ls)
        return gram__fail(ctx, GRAM_EINVAL, "%s%s: lengthscales is NULL but n_lengthscales = %lld",
                          where, name, (long long)n_ls);
    /* constant and white have no per-pair statistic, so a lengthscale would silently do nothing:
     * refuse it rather than ignore it. */
    if (st == GRAM_STRUCT_CONST && n_ls > 0)
        return gram__fail(ctx, GRAM_EINVAL, "%s%s takes no lengthscale (got %lld)", where, name,
                          (long long)n_ls);
    if (f == GRAM_PERIODIC && n_ls > 1)
        return gram__fail(ctx, GRAM_EINVAL,
                          "%speriodic: lengthscale must be a scalar, got %lld values", where,
                          (long long)n_ls);
    if (n_params < 0 || n_params > np)
        return gram__fail(ctx, GRAM_EINVAL, "%s%s takes at most %d parameter%s, got %d", where,
                          name, np, np == 1 ? "" : "s", n_params);
    if (n_params > 0 && !params)
        return gram__fail(ctx, GRAM_EINVAL, "%s%s: params is NULL but n_params = %d", where, name,
                          n_params);
    for (int64_t d = 0; d < n_ls; d++) {
        double v = ls[d];
        if (!isfinite(v) || !(v > 0.0)) {
            if (n_ls > 1)
                return gram__fail(ctx, GRAM_EINVAL,
                                  "%s%s: lengthscale[%lld] must be > 0 and finite, got %g", where,
                                  name, (long long)d, v);
            return gram__fail(ctx, GRAM_EINVAL, "%s%s: lengthscale must be > 0 and finite, got %g",
                              where, name, v);
        }
        if (!isfinite(1.0 / v))
            return gram__fail(ctx, GRAM_EINVAL, "%s%s: lengthscale %g is too small (1/%g overflows)",
                              where, name, v, v);
    }

    double p[GRAM__MAX_PARAMS] = {0};
    for (int i = 0; i < np; i++) p[i] = i < n_params ? params[i] : PARAMS[f].def[i];

    switch (f) {
    case GRAM_RATIONAL_QUADRATIC:
        if ((s = check_param(ctx, where, f, "alpha", p[0], 1))) return s;
        L->alpha = p[0];
        break;
    case GRAM_PERIODIC:
        if ((s = check_param(ctx, where, f, "period", p[0], 1))) return s;
        if (!isfinite(1.0 / p[0]))
            return gram__fail(ctx, GRAM_EINVAL, "%speriodic: period %g is too small", where, p[0]);
        L->period = p[0];
        break;
    case GRAM_LINEAR:
        if ((s = check_param(ctx, where, f, "sigma0", p[0], 0))) return s;
        if (!isfinite(p[0] * p[0]))
            return gram__fail(ctx, GRAM_EINVAL, "%slinear: sigma0 %g is too large (sigma0^2 overflows)",
                              where, p[0]);
        L->sigma0 = p[0] + 0.0; /* + 0.0 turns -0 into 0 */
        break;
    case GRAM_POLYNOMIAL:
        if (!isfinite(p[0]) || p[0] != floor(p[0]) || p[0] < 1.0 || p[0] > INT_MAX)
            return gram__fail(ctx, GRAM_EINVAL,
                              "%spolynomial: degree must be an integer in [1, %d], got %g", where,
                              INT_MAX, p[0]);
        if ((s = check_param(ctx, where, f, "gamma", p[1], 1))) return s;
        if ((s = check_param(ctx, where, f, "coef0", p[2], 0))) return s;
        L->degree = (int)p[0];
        L->gamma = p[1];
        L->coef0 = p[2] + 0.0;
        break;
    case GRAM_CONSTANT:
        if ((s = check_param(ctx, where, f, "value", p[0], 1))) return s;
        L->value = p[0];
        break;
    case GRAM_WHITE:
        if ((s = check_param(ctx, where, f, "noise", p[0], 0))) return s;
        L->noise = p[0] + 0.0;
        break;
    case GRAM_SIGMOID:
        if ((s = check_param(ctx, where, f, "gamma", p[0], 1))) return s;
        if (!isfinite(p[1]))
            return gram__fail(ctx, GRAM_EINVAL, "%ssigmoid: coef0 must be finite, got %g", where, p[1]);
        L->gamma = p[0];
        L->coef0 = p[1] + 0.0;
        break;
    case GRAM_ARCCOS:
        if (!(p[0] == 0.0 || p[0] == 1.0 || p[0] == 2.0))
            return gram__fail(ctx, GRAM_EINVAL, "%sarccos: degree must be 0, 1 or 2, got %g", where, p[0]);
        L->degree = (int)p[0];
        break;
    case GRAM_MATERN:
        if ((s = check_param(ctx, where, f, "nu", p[0], 1))) return s;
        if (p[0] > GRAM__MATERN_NU_MAX)
            return gram__fail(ctx, GRAM_EINVAL,
                              "%smatern: nu must be <= %g, got %g (the kernel tends to the gaussian as "
                              "nu grows; use gaussian)",
                              where, GRAM__MATERN_NU_MAX, p[0]);
        /* the half-integers scikit-learn writes in closed form are gram's own families */
        if (p[0] == 0.5) f = GRAM_MATERN12;
        else if (p[0] == 1.5) f = GRAM_MATERN32;
        else if (p[0] == 2.5) f = GRAM_MATERN52;
        L->nu = p[0];
        break;
    default: break;
    }

    L->family = f;
    L->structure = st;
    if (f == GRAM_MATERN) gram__matern_prepare(L);
    if (st == GRAM_STRUCT_CONST) return GRAM_OK; /* n_scale = 0, no arrays */

    int64_t n = n_ls > 1 ? n_ls : 1;
    L->n_scale = n;
    L->inv_scale = malloc((size_t)n * sizeof(double));
    L->lengthscale = malloc((size_t)n * sizeof(double));
    if (!L->inv_scale || !L->lengthscale) {
        gram__leaf_free(L);
        L->n_scale = 0;
        return gram__fail(ctx, GRAM_ENOMEM, "%s%s: out of memory for %lld lengthscales", where,
                          name, (long long)n);
    }
    for (int64_t d = 0; d < n; d++) L->lengthscale[d] = n_ls > 0 ? ls[d] : 1.0;
    if (f == GRAM_PERIODIC) L->inv_scale[0] = 1.0 / L->period;
    else
        for (int64_t d = 0; d < n; d++) L->inv_scale[d] = 1.0 / L->lengthscale[d];
    return GRAM_OK;
}

static gram_status leaf_copy(gram_context *ctx, gram__leaf *dst, const gram__leaf *src)
{
    *dst = *src;
    dst->inv_scale = dst->lengthscale = dst->ls_lo = dst->ls_hi = NULL;
    if (src->n_scale == 0) return GRAM_OK;
    size_t bytes = (size_t)src->n_scale * sizeof(double);
    dst->inv_scale = malloc(bytes);
    dst->lengthscale = malloc(bytes);
    if (src->ls_lo) {
        dst->ls_lo = malloc(bytes);
        dst->ls_hi = malloc(bytes);
    }
    if (!dst->inv_scale || !dst->lengthscale || (src->ls_lo && (!dst->ls_lo || !dst->ls_hi))) {
        gram__leaf_free(dst);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory copying a kernel");
    }
    memcpy(dst->inv_scale, src->inv_scale, bytes);
    memcpy(dst->lengthscale, src->lengthscale, bytes);
    if (src->ls_lo) {
        memcpy(dst->ls_lo, src->ls_lo, bytes);
        memcpy(dst->ls_hi, src->ls_hi, bytes);
    }
    return GRAM_OK;
}

/* The j-th hyperparameter of a leaf: a pointer to the value it is the log of, and the name of
 * the parameter. The order is the one documented at the top of this file. */
static double *leaf_slot(gram__leaf *L, int64_t j, const char **what)
{
    int64_t nls = L->structure == GRAM_STRUCT_CONST ? 0 : L->n_scale;
    if (j < nls) {
        *what = "lengthscale";
        return &L->lengthscale[j];
    }
    j -= nls;
    double *slot[GRAM__MAX_PARAMS];
    const char *name[GRAM__MAX_PARAMS];
    int m = 0;
#define SLOT(field, str) (slot[m] = &L->field, name[m++] = str)
    switch (L->family) {
    case GRAM_RATIONAL_QUADRATIC: SLOT(alpha, "alpha"); break;
    case GRAM_PERIODIC: SLOT(period, "period"); break;
    case GRAM_LINEAR:
        if (L->sigma0 > 0.0) SLOT(sigma0, "sigma0");
        break;
    case GRAM_POLYNOMIAL:
    case GRAM_SIGMOID:
        SLOT(gamma, "gamma");
        if (L->coef0 > 0.0) SLOT(coef0, "coef0");
        break;
    case GRAM_CONSTANT: SLOT(value, "value"); break;
    case GRAM_WHITE:
        if (L->noise > 0.0) SLOT(noise, "noise");
        break;
    default: break;
    }
#undef SLOT
    if (j >= m) return NULL;
    *what = name[j];
    return slot[j];
}

int gram__leaf_bound_slot(const gram__leaf *L, int64_t j)
{
    const char *what = NULL;
    if (!leaf_slot((gram__leaf *)(uintptr_t)L, j, &what)) return -1;
    if (!strcmp(what, "lengthscale")) return 0;
    for (int i = 0; i < gram__family_n_params(L->family); i++)
        if (!strcmp(gram__family_param_name(L->family, i), what)) return 1 + i;
    return -1;
}

int64_t gram__leaf_n_hyper(const gram__leaf *L)
{
    int64_t n = L->structure == GRAM_STRUCT_CONST ? 0 : L->n_scale;
    switch (L->family) {
    case GRAM_RATIONAL_QUADRATIC:
    case GRAM_PERIODIC:
    case GRAM_CONSTANT: return n + 1;
    case GRAM_LINEAR: return n + (L->sigma0 > 0.0);
    case GRAM_POLYNOMIAL:
    case GRAM_SIGMOID: return n + 1 + (L->coef0 > 0.0);
    case GRAM_WHITE: return n + (L->noise > 0.0);
    default: return n;
    }
}

/* Recomputes what the family functions read from the user-facing values after they change. */
static void leaf_refresh(gram__leaf *L)
{
    if (L->structure == GRAM_STRUCT_CONST) return;
    if (L->family == GRAM_PERIODIC) L->inv_scale[0] = 1.0 / L->period;
    else
        for (int64_t d = 0; d < L->n_scale; d++) L->inv_scale[d] = 1.0 / L->lengthscale[d];
}

/* ---- kernels ---------------------------------------------------------------------------------- */

static gram_kernel *kernel_alloc(int n_ops, int n_leaves)
{
    gram_kernel *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->ops = calloc((size_t)n_ops, sizeof *k->ops);
    k->leaves = calloc((size_t)(n_leaves > 0 ? n_leaves : 1), sizeof *k->leaves);
    if (!k->ops || !k->leaves) {
        free(k->ops);
        free(k->leaves);
        free(k);
        return NULL;
    }
    /* n_ops and n_leaves count what is filled in, so a partly built kernel can be destroyed. */
    return k;
}

void gram_kernel_destroy(gram_kernel *k)
{
    if (!k) return;
    for (int i = 0; i < k->n_leaves; i++) gram__leaf_free(&k->leaves[i]);
    free(k->leaves);
    free(k->ops);
    free(k->op_flags);
    if (k->hyper_names) free(k->hyper_names[0]); /* one block holds every name */
    free(k->hyper_names);
    free(k);
}

static int64_t leaf_dim(const gram__leaf *L) { return L->n_scale > 1 ? L->n_scale : 0; }

int gram__is_integer(double v) { return isfinite(v) && v == floor(v); }

int gram__op_nonneg(const gram__op *op, int a, int b)
{
    switch (op->kind) {
    case GRAM_OP_ADD:
    case GRAM_OP_MUL: return a && b; /* a product of two factors that may be negative may be negative */
    case GRAM_OP_SCALE: return op->c == 0.0 || (op->c > 0.0 && a);
    /* an even power of anything, any power of a non-negative base */
    case GRAM_OP_POW: return a || (gram__is_integer(op->c) && fmod(op->c, 2.0) == 0.0);
    default: return 0;
    }
}

const char *gram__pow_refusal(double p, int a)
{
    if (!isfinite(p) || !(p > 0.0))
        return "the exponent must be > 0 and finite (a kernel to a power <= 0 is no kernel, and infinite "
               "where the kernel is 0)";
    if (!a && !gram__is_integer(p))
        return "the exponent is not an integer and the kernel can be negative, where k^p is not a real "
               "number; use an integer exponent or a kernel that is never negative";
    return NULL;
}

/* k->op_flags for a checked program: signs bottom-up, then the log-space modes top-down (an op's
 * operands are the op before it and, for a binary op, the op before that operand's subtree). */
static gram_status op_flags(gram_context *ctx, gram_kernel *k)
{
    int n = k->n_ops;
    free(k->op_flags);
    k->op_flags = calloc((size_t)n, 1);
    int *start = malloc((size_t)n * sizeof(int));
    if (!k->op_flags || !start) {
        free(start);
        return gram__fail(ctx, GRAM_ENOMEM, "kernel: out of memory");
    }
    unsigned char *f = k->op_flags;
    for (int i = 0; i < n; i++) {
        const gram__op *op = &k->ops[i];
        int nn;
        if (op->kind == GRAM_OP_LEAF) {
            start[i] = i;
            nn = gram__leaf_nonnegative(&k->leaves[op->leaf]);
        } else if (op->kind == GRAM_OP_SCALE || op->kind == GRAM_OP_POW) {
            start[i] = start[i - 1];
            nn = gram__op_nonneg(op, f[i - 1] & GRAM__OPF_NONNEG, 0);
        } else {
            int left = start[i - 1] - 1;
            start[i] = start[left];
            nn = gram__op_nonneg(op, f[left] & GRAM__OPF_NONNEG, f[i - 1] & GRAM__OPF_NONNEG);
        }
        f[i] = (unsigned char)(nn ? GRAM__OPF_NONNEG : 0);
    }
    /* children after their parent, so one pass down marks whole subtrees */
    for (int i = n - 1; i >= 0; i--) {
        const gram__op *op = &k->ops[i];
        if (op->kind == GRAM_OP_LEAF) continue;
        int direct = (f[i] & GRAM__OPF_DIRECT) ||
                     (op->kind == GRAM_OP_POW && !(f[i - 1] & GRAM__OPF_NONNEG)) ||
                     (op->kind == GRAM_OP_SCALE && op->c == 0.0);
        if (!direct) continue;
        f[i - 1] |= GRAM__OPF_DIRECT;
        if (op->kind == GRAM_OP_ADD || op->kind == GRAM_OP_MUL) f[start[i - 1] - 1] |= GRAM__OPF_DIRECT;
    }
    /* The log regions: from the operand of a power p < 1 down, stopping where a log-space
     * evaluation stops (the operand of a power of a base that can be negative, of a zero scale);
     * every op inside is non-negative (a sum or product is only if both operands are), so each
     * leaf there has a log form. */
    for (int i = n - 1; i >= 0; i--) {
        const gram__op *op = &k->ops[i];
        if (op->kind == GRAM_OP_LEAF) continue;
        int root = op->kind == GRAM_OP_POW && op->c < 1.0 && (f[i - 1] & GRAM__OPF_NONNEG);
        int stop = (op->kind == GRAM_OP_POW && !(f[i - 1] & GRAM__OPF_NONNEG)) ||
                   (op->kind == GRAM_OP_SCALE && op->c == 0.0);
        if (!root && !((f[i] & GRAM__OPF_LOG) && !stop)) continue;
        f[i - 1] |= GRAM__OPF_LOG;
        if (op->kind == GRAM_OP_ADD || op->kind == GRAM_OP_MUL) f[start[i - 1] - 1] |= GRAM__OPF_LOG;
    }
    free(start);
    return GRAM_OK;
}

int gram__kernel_has_log_ops(const gram_kernel *k)
{
    for (int i = 0; i < k->n_ops; i++)
        if (k->op_flags[i] & GRAM__OPF_LOG) return 1;
    return 0;
}

gram_status gram__kernel_finish(gram_context *ctx, gram_kernel *k)
{
    gram_status s = GRAM_OK;
    char *nonneg = NULL;
    if (!k) return gram__fail(ctx, GRAM_EINTERNAL, "kernel: finishing a NULL kernel");
    if (k->n_ops < 1 || k->n_ops > GRAM__MAX_OPS) {
        s = gram__fail(ctx, GRAM_EINTERNAL, "kernel: program of %d ops", k->n_ops);
        goto fail;
    }
    nonneg = malloc((size_t)k->n_ops);
    if (!nonneg) {
        s = gram__fail(ctx, GRAM_ENOMEM, "kernel: out of memory");
        goto fail;
    }

    /* Check the program, and fill depth, sign, dimension and the hyperparameter indices. */
    int depth = 0, max_depth = 0, leaf = 0, dim_leaf = -1;
    int64_t dim = 0, nh = 0;
    k->has_white = 0;
    for (int i = 0; i < k->n_ops; i++) {
        gram__op *op = &k->ops[i];
        switch (op->kind) {
        case GRAM_OP_LEAF: {
            if (op->leaf != leaf || leaf >= k->n_leaves) {
                s = gram__fail(ctx, GRAM_EINTERNAL, "kernel: op %d names leaf %d, expected %d", i,
                               op->leaf, leaf);
                goto fail;
            }
            gram__leaf *L = &k->leaves[leaf++];
            int64_t ld = leaf_dim(L);
            if (ld) {
                if (dim && ld != dim) {
                    s = gram__fail(ctx, GRAM_ESHAPE,
                                   "kernel: leaf %d has %lld ARD lengthscales but leaf %d has %lld; "
                                   "the dimensions must agree",
                                   leaf, (long long)ld, dim_leaf + 1, (long long)dim);
                    goto fail;
                }
                dim = ld;
                dim_leaf = leaf - 1;
            }
            if (L->family == GRAM_WHITE) k->has_white = 1;
            L->hyper0 = (int)nh; /* checked below: nh stays well inside int for sane kernels */
            nh += gram__leaf_n_hyper(L);
            nonneg[depth++] = (char)gram__leaf_nonnegative(L);
            break;
        }
        case GRAM_OP_ADD:
        case GRAM_OP_MUL:
            if (depth < 2) {
                s = gram__fail(ctx, GRAM_EINTERNAL, "kernel: op %d pops an empty stack", i);
                goto fail;
            }
            nonneg[depth - 2] = (char)gram__op_nonneg(op, nonneg[depth - 2], nonneg[depth - 1]);
            depth--;
            break;
        case GRAM_OP_SCALE:
            if (depth < 1 || !isfinite(op->c)) {
                s = gram__fail(ctx, GRAM_EINTERNAL, "kernel: bad scale op %d", i);
                goto fail;
            }
            nonneg[depth - 1] = (char)gram__op_nonneg(op, nonneg[depth - 1], 0);
            op->hyper = op->c > 0.0 ? (int)nh++ : -1;
            break;
        case GRAM_OP_POW: {
            const char *why = depth < 1 ? "no operand" : gram__pow_refusal(op->c, nonneg[depth - 1]);
            if (why) {
                s = gram__fail(ctx, depth < 1 ? GRAM_EINTERNAL : GRAM_EDOMAIN, "kernel: (k)^%g: %s", op->c, why);
                goto fail;
            }
            nonneg[depth - 1] = (char)gram__op_nonneg(op, nonneg[depth - 1], 0);
            op->hyper = -1;
            break;
        }
        default:
            s = gram__fail(ctx, GRAM_EINTERNAL, "kernel: op %d has unknown kind %d", i, (int)op->kind);
            goto fail;
        }
        if (nh > INT_MAX) {
            s = gram__fail(ctx, GRAM_EOVERFLOW, "kernel: more than %d hyperparameters", INT_MAX);
            goto fail;
        }
        if (depth > max_depth) max_depth = depth;
    }
    if (depth != 1 || leaf != k->n_leaves) {
        s = gram__fail(ctx, GRAM_EINTERNAL, "kernel: program leaves %d values on the stack", depth);
        goto fail;
    }
    k->dim = dim;
    k->stack_depth = max_depth;
    k->nonnegative = nonneg[0];
    k->n_hyper = nh;
    free(nonneg);
    nonneg = NULL;
    if ((s = op_flags(ctx, k))) goto fail;

    /* Names, all in one block: first measure, then write. */
    if (k->hyper_names) free(k->hyper_names[0]);
    free(k->hyper_names);
    k->hyper_names = NULL;
    if (nh == 0) return GRAM_OK;
    for (int pass = 0; pass < 2; pass++) {
        size_t total = 0;
        char *block = pass ? k->hyper_names[0] : NULL;
        int64_t h = 0;
        int lf = 0, sc = 0;
        for (int i = 0; i < k->n_ops; i++) {
            const gram__op *op = &k->ops[i];
            if (op->kind == GRAM_OP_SCALE) {
                sc++;
                if (op->hyper < 0) continue;
                char *dst = block ? block + total : NULL;
                if (pass) k->hyper_names[h] = dst;
                total += (size_t)snprintf(dst, dst ? 32 : 0, "scale%d", sc) + 1;
                h++;
            } else if (op->kind == GRAM_OP_LEAF) {
                gram__leaf *L = &k->leaves[op->leaf];
                lf++;
                int64_t n = gram__leaf_n_hyper(L);
                int ard = L->structure != GRAM_STRUCT_CONST && L->n_scale > 1;
                for (int64_t j = 0; j < n; j++) {
                    const char *what = "";
                    leaf_slot(L, j, &what);
                    char *dst = block ? block + total : NULL;
                    size_t room = dst ? 64 : 0;
                    if (pass) k->hyper_names[h] = dst;
                    int len = ard && j < L->n_scale
                                  ? snprintf(dst, room, "leaf%d.%s[%lld]", lf, what, (long long)j)
                                  : snprintf(dst, room, "leaf%d.%s", lf, what);
                    total += (size_t)len + 1;
                    h++;
                }
            }
        }
        if (!pass) {
            k->hyper_names = malloc((size_t)nh * sizeof(char *));
            char *b = malloc(total);
            if (!k->hyper_names || !b) {
                free(b);
                free(k->hyper_names);
                k->hyper_names = NULL;
                s = gram__fail(ctx, GRAM_ENOMEM, "kernel: out of memory for hyperparameter names");
                goto fail;
            }
            k->hyper_names[0] = b;
        }
    }
    return GRAM_OK;

fail:
    free(nonneg);
    gram_kernel_destroy(k);
    return s;
}

gram_status gram_kernel_create(gram_context *ctx, gram_family family, int64_t n_lengthscales,
                               const double *lengthscales, int n_params, const double *params,
                               gram_kernel **out)
{
    gram__clear(ctx);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_create: out is NULL");
    *out = NULL;
    gram_kernel *k = kernel_alloc(1, 1);
    if (!k) return gram__fail(ctx, GRAM_ENOMEM, "gram_kernel_create: out of memory");
    gram_status s = gram__leaf_init(ctx, "", &k->leaves[0], family, n_lengthscales, lengthscales,
                                    n_params, params);
    if (s) {
        gram_kernel_destroy(k);
        return s;
    }
    k->n_leaves = 1;
    k->n_ops = 1;
    k->ops[0].kind = GRAM_OP_LEAF;
    k->ops[0].leaf = 0;
    k->ops[0].hyper = -1;
    if ((s = gram__kernel_finish(ctx, k))) return s;
    *out = k;
    return GRAM_OK;
}

/* a, then b (if any), then one op: the postfix program of a + b, a * b or c * a. */
static gram_status combine(gram_context *ctx, const char *what, const gram_kernel *a,
                           const gram_kernel *b, gram__op_kind kind, double c, gram_kernel **out)
{
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "%s: out is NULL", what);
    *out = NULL;
    int binary = kind == GRAM_OP_ADD || kind == GRAM_OP_MUL;
    if (!a || (binary && !b))
        return gram__fail(ctx, GRAM_EINVAL, "%s: kernel operand is NULL", what);
    if (binary && a->dim && b->dim && a->dim != b->dim)
        return gram__fail(ctx, GRAM_ESHAPE,
                          "%s: the operands have ARD dimensions %lld and %lld; they must agree",
                          what, (long long)a->dim, (long long)b->dim);
    int64_t n_ops = (int64_t)a->n_ops + (b ? b->n_ops : 0) + (kind == GRAM_OP_LEAF ? 0 : 1);
    int64_t n_leaves = (int64_t)a->n_leaves + (b ? b->n_leaves : 0);
    if (n_ops > GRAM__MAX_OPS)
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: the kernel would have %lld operations (at most %d)",
                          what, (long long)n_ops, GRAM__MAX_OPS);
    gram_kernel *k = kernel_alloc((int)n_ops, (int)n_leaves);
    if (!k) return gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory", what);
    const gram_kernel *src[2] = {a, b};
    int no = 0;
    for (int t = 0; t < 2 && src[t]; t++) {
        for (int i = 0; i < src[t]->n_ops; i++) {
            gram__op op = src[t]->ops[i];
            if (op.kind == GRAM_OP_LEAF) op.leaf += k->n_leaves;
            k->ops[no++] = op;
        }
        for (int i = 0; i < src[t]->n_leaves; i++) {
            gram_status s = leaf_copy(ctx, &k->leaves[k->n_leaves], &src[t]->leaves[i]);
            if (s) {
                gram_kernel_destroy(k);
                return s;
            }
            k->n_leaves++;
        }
    }
    if (kind != GRAM_OP_LEAF) {
        k->ops[no].kind = kind;
        k->ops[no].leaf = 0;
        k->ops[no].c = c;
        k->ops[no].hyper = -1;
        no++;
    }
    k->n_ops = no;
    gram_status s = gram__kernel_finish(ctx, k);
    if (s) return s;
    *out = k;
    return GRAM_OK;
}

gram_status gram_kernel_add(gram_context *ctx, const gram_kernel *a, const gram_kernel *b,
                            gram_kernel **out)
{
    gram__clear(ctx);
    return combine(ctx, "gram_kernel_add", a, b, GRAM_OP_ADD, 0.0, out);
}

gram_status gram_kernel_mul(gram_context *ctx, const gram_kernel *a, const gram_kernel *b,
                            gram_kernel **out)
{
    gram__clear(ctx);
    return combine(ctx, "gram_kernel_mul", a, b, GRAM_OP_MUL, 0.0, out);
}

gram_status gram_kernel_scale(gram_context *ctx, double c, const gram_kernel *a, gram_kernel **out)
{
    gram__clear(ctx);
    if (out) *out = NULL;
    if (!isfinite(c))
        return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_scale: the factor must be finite, got %g", c);
    return combine(ctx, "gram_kernel_scale", a, NULL, GRAM_OP_SCALE, c, out);
}

gram_status gram_kernel_pow(gram_context *ctx, const gram_kernel *a, double exponent, gram_kernel **out)
{
    gram__clear(ctx);
    if (out) *out = NULL;
    const char *why = a ? gram__pow_refusal(exponent, a->nonnegative) : NULL;
    if (why)
        return gram__fail(ctx, exponent > 0.0 && isfinite(exponent) ? GRAM_EDOMAIN : GRAM_EINVAL,
                          "gram_kernel_pow: exponent %g: %s", exponent, why);
    return combine(ctx, "gram_kernel_pow", a, NULL, GRAM_OP_POW, exponent, out);
}

gram_status gram_kernel_copy(gram_context *ctx, const gram_kernel *k, gram_kernel **out)
{
    gram__clear(ctx);
    /* LEAF as the "op" kind means: copy the program, append nothing. */
    return combine(ctx, "gram_kernel_copy", k, NULL, GRAM_OP_LEAF, 0.0, out);
}

int64_t gram_kernel_dim(const gram_kernel *k) { return k ? k->dim : 0; }
int gram_kernel_is_nonnegative(const gram_kernel *k) { return k ? k->nonnegative : 0; }
int64_t gram_kernel_n_hyper(const gram_kernel *k) { return k ? k->n_hyper : 0; }

const char *gram_kernel_hyper_name(const gram_kernel *k, int64_t i)
{
    if (!k || i < 0 || i >= k->n_hyper) return NULL;
    return k->hyper_names[i];
}

gram_status gram_kernel_get_hyper(const gram_kernel *k, double *theta)
{
    if (!k || (!theta && k->n_hyper > 0)) return GRAM_EINVAL;
    for (int i = 0; i < k->n_ops; i++) {
        const gram__op *op = &k->ops[i];
        if (op->kind == GRAM_OP_SCALE && op->hyper >= 0) theta[op->hyper] = log(op->c);
        if (op->kind != GRAM_OP_LEAF) continue;
        gram__leaf *L = &k->leaves[op->leaf];
        int64_t n = gram__leaf_n_hyper(L);
        for (int64_t j = 0; j < n; j++) {
            const char *what;
            theta[L->hyper0 + j] = log(*leaf_slot(L, j, &what));
        }
    }
    return GRAM_OK;
}

gram_status gram_kernel_set_hyper(gram_context *ctx, const gram_kernel *k, const double *theta,
                                  gram_kernel **out)
{
    gram__clear(ctx);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_set_hyper: out is NULL");
    *out = NULL;
    if (!k) return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_set_hyper: kernel is NULL");
    if (!theta && k->n_hyper > 0)
        return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_set_hyper: theta is NULL");
    /* Every value must stay positive and finite: a θ so small that exp underflows would silently
     * turn a hyperparameter into a fixed zero. Lengthscales and periods are also divided by (the
     * packed inputs are x/ℓ), so their reciprocals must be finite too, as the parser requires;
     * scales, constants, noise and the other family parameters may be subnormal, as the parser
     * accepts them ("constant(1e-320)": θ = -736.8 must come back through set_hyper). */
    for (int i = 0; i < k->n_ops; i++) {
        const gram__op *op = &k->ops[i];
        int64_t h0 = -1, nh = 0;
        const gram__leaf *L = NULL;
        if (op->kind == GRAM_OP_SCALE && op->hyper >= 0) h0 = op->hyper, nh = 1;
        if (op->kind == GRAM_OP_LEAF) L = &k->leaves[op->leaf], h0 = L->hyper0, nh = gram__leaf_n_hyper(L);
        for (int64_t j = 0; j < nh; j++) {
            const int64_t h = h0 + j;
            const char *what = "scale";
            if (L) leaf_slot((gram__leaf *)(uintptr_t)L, j, &what);
            const int divided = !strcmp(what, "lengthscale") || !strcmp(what, "period");
            double v = exp(theta[h]);
            if (!isfinite(theta[h]) || !(v > 0.0) || !isfinite(v) || (divided && !isfinite(1.0 / v)))
                return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_set_hyper: theta[%lld] (%s) = %g is %s",
                                  (long long)h, k->hyper_names[h], theta[h],
                                  !isfinite(theta[h]) ? "not finite"
                                  : divided ? "out of range (exp(theta) must be a positive finite double "
                                              "with a finite reciprocal)"
                                            : "out of range (exp(theta) must be a positive finite double)");
        }
    }
    gram_kernel *c;
    gram_status s = combine(ctx, "gram_kernel_set_hyper", k, NULL, GRAM_OP_LEAF, 0.0, &c);
    if (s) return s;
    for (int i = 0; i < c->n_ops; i++) {
        gram__op *op = &c->ops[i];
        if (op->kind == GRAM_OP_SCALE && op->hyper >= 0) op->c = exp(theta[op->hyper]);
        if (op->kind != GRAM_OP_LEAF) continue;
        gram__leaf *L = &c->leaves[op->leaf];
        int64_t n = gram__leaf_n_hyper(L);
        for (int64_t j = 0; j < n; j++) {
            const char *what;
            *leaf_slot(L, j, &what) = exp(theta[L->hyper0 + j]);
        }
        leaf_refresh(L);
        if (L->family == GRAM_LINEAR && !isfinite(L->sigma0 * L->sigma0)) {
            gram_kernel_destroy(c);
            return gram__fail(ctx, GRAM_EINVAL,
                              "gram_kernel_set_hyper: leaf%d.sigma0 = %g is too large (its square "
                              "overflows)",
                              op->leaf + 1, L->sigma0);
        }
    }
    *out = c;
    return GRAM_OK;
}

/* ---- bounds ----------------------------------------------------------------------------------- */

/* scikit-learn's defaults, kept as they are whatever the value: a value outside its bounds is
 * allowed (the optimiser starts from its projection onto them). */
static void default_bounds(double *lo, double *hi)
{
    *lo = log(GRAM__BOUND_MIN);
    *hi = log(GRAM__BOUND_MAX);
}

gram_status gram_kernel_get_bounds(const gram_kernel *k, double *lower, double *upper)
{
    if (!k || ((!lower || !upper) && k->n_hyper > 0)) return GRAM_EINVAL;
    for (int i = 0; i < k->n_ops; i++) {
        const gram__op *op = &k->ops[i];
        if (op->kind == GRAM_OP_SCALE && op->hyper >= 0)
            default_bounds(&lower[op->hyper], &upper[op->hyper]);
        if (op->kind != GRAM_OP_LEAF) continue;
        gram__leaf *L = &k->leaves[op->leaf];
        int64_t n = gram__leaf_n_hyper(L);
        for (int64_t j = 0; j < n; j++) {
            const char *what;
            double th = log(*leaf_slot(L, j, &what));
            int slot = gram__leaf_bound_slot(L, j);
            int kind = slot >= 0 ? L->bound_kind[slot] : GRAM__BOUND_DEFAULT;
            double *lo = &lower[L->hyper0 + j], *hi = &upper[L->hyper0 + j];
            if (kind == GRAM__BOUND_FIXED) *lo = *hi = th;
            else if (kind == GRAM__BOUND_RANGE && slot == 0 && L->ls_lo) {
                *lo = log(L->ls_lo[j]); /* the lengthscales are the leaf's first hyperparameters */
                *hi = log(L->ls_hi[j]);
            } else if (kind == GRAM__BOUND_RANGE) {
                *lo = log(L->bound_lo[slot]);
                *hi = log(L->bound_hi[slot]);
            } else
                default_bounds(lo, hi);
        }
    }
    return GRAM_OK;
}

int gram_kernel_hyper_fixed(const gram_kernel *k, int64_t h)
{
    if (!k || h < 0 || h >= k->n_hyper) return 0;
    for (int i = 0; i < k->n_ops; i++) {
        const gram__op *op = &k->ops[i];
        if (op->kind != GRAM_OP_LEAF) continue;
        const gram__leaf *L = &k->leaves[op->leaf];
        int64_t n = gram__leaf_n_hyper(L);
        if (h >= L->hyper0 && h < L->hyper0 + n) {
            int slot = gram__leaf_bound_slot(L, h - L->hyper0);
            return slot >= 0 && L->bound_kind[slot] == GRAM__BOUND_FIXED;
        }
    }
    return 0;
}
