/* kernel: immutable kernel descriptors (internal view).
 *
 * A kernel is a postfix program over leaves. Each leaf is one family with its parameters and the
 * per-dimension scaling the engine folds into the packed inputs; the program combines leaf values
 * with add, mul and scale. The engine evaluates a tile of each leaf, then runs the program
 * tile-wise; scalar code (gradients, diagonals, the reference microkernel) runs it pair-wise.
 */
#ifndef GRAM_KERNEL_H
#define GRAM_KERNEL_H

#include "../base/base.h"

/* GRAM_OP_POW raises its operand to a fixed real power c > 0 (scikit-learn's Exponentiation: the
 * exponent is not a hyperparameter). */
typedef enum gram__op_kind { GRAM_OP_LEAF = 0, GRAM_OP_ADD, GRAM_OP_MUL, GRAM_OP_SCALE, GRAM_OP_POW } gram__op_kind;

typedef struct gram__op {
    gram__op_kind kind;
    int leaf;     /* GRAM_OP_LEAF: index into leaves */
    double c;     /* GRAM_OP_SCALE: the factor; GRAM_OP_POW: the exponent */
    int hyper;    /* GRAM_OP_SCALE: index of its hyperparameter ("scale"), or -1 when fixed (c ≤ 0) */
} gram__op;

typedef struct gram__leaf {
    gram_family family;
    gram_structure structure;
    /* Coordinates are multiplied by inv_scale before the structure's statistic:
     * n_scale = 1 → inv_scale[0] for every dimension; n_scale = D → one per dimension.
     * For periodic, inv_scale = 1/period and lengthscale is a family parameter. */
    int64_t n_scale;
    double *inv_scale;   /* owned, n_scale values */
    double *lengthscale; /* owned, n_scale values as the user gave them (periodic: 1 value) */
    /* Family parameters as given (see gram.h): alpha, period, sigma0, degree, gamma, coef0,
     * value, noise; unused ones are 0. */
    double alpha, period, sigma0, gamma, coef0, value, noise, nu;
    int degree;
    /* matern (general ν): constants of its Bessel function, set by gram__matern_prepare */
    double bk[5];
    int bk_n;
    int hyper0; /* index of this leaf's first hyperparameter */
    /* Learning bounds (gram_kernel_get_bounds), values not logs: slot 0 = lengthscale (every ARD
     * entry), slot 1 + i = family parameter i. bound_kind: GRAM__BOUND_DEFAULT, _RANGE, _FIXED.
     * A lower bound 0 or an upper bound inf is an open side (log bound ∓inf), as in scikit-learn.
     * Values need not lie inside their bounds: bounds only constrain learning. */
    unsigned char bound_kind[4];
    double bound_lo[4], bound_hi[4];
    /* Per-dimension lengthscale bounds (owned, n_scale values each) when they differ between
     * dimensions; NULL: bound_lo[0], bound_hi[0] for every lengthscale. */
    double *ls_lo, *ls_hi;
} gram__leaf;

enum { GRAM__BOUND_DEFAULT = 0, GRAM__BOUND_RANGE = 1, GRAM__BOUND_FIXED = 2 };
#define GRAM__BOUND_MIN 1e-5 /* scikit-learn's default bounds */
#define GRAM__BOUND_MAX 1e5

struct gram_kernel {
    int n_ops;
    gram__op *ops;
    int n_leaves;
    gram__leaf *leaves;
    int64_t dim;      /* fixed dimension (ARD) or 0 */
    int64_t n_hyper;
    char **hyper_names; /* n_hyper strings */
    int stack_depth;    /* largest evaluation stack the program needs */
    int nonnegative;
    int has_white;
    /* Per op: GRAM__OPF_NONNEG when the op's value is ≥ 0 everywhere; GRAM__OPF_DIRECT when a
     * log-space evaluation must compute this op's value itself, not its log: the operand of a power
     * whose base can be negative (k^2 of a linear k: 2·log|k|) and of a zero scale (its log is
     * not needed, and would be NaN for a kernel that can be negative), and everything below them.
     * GRAM__OPF_LOG when every evaluation, direct ones included, computes this op's log rather than
     * its value: the operand of a power p < 1 (whose operand is never negative) and its subtree down
     * to where a log-space evaluation would switch to values (the operand of a power of a base
     * that can be negative, of a zero scale). k^p is then exp(p·log k), a normal number where k
     * itself underflows (exponential(0.001)^0.001 at distance 1 is e^-1; pow(0, p) gave 0). */
    unsigned char *op_flags;
};

enum { GRAM__OPF_NONNEG = 1, GRAM__OPF_DIRECT = 2, GRAM__OPF_LOG = 4 };

/* 1 when op o of k is evaluated as a log, in a log-space evaluation (logspace) or a direct one. */
static inline int gram__op_logmode(const gram_kernel *k, int o, int logspace)
{
    const unsigned char f = k->op_flags[o];
    return (f & GRAM__OPF_LOG) || (logspace && !(f & GRAM__OPF_DIRECT));
}
/* 1 when k has any GRAM__OPF_LOG op (a power p < 1). */
int gram__kernel_has_log_ops(const gram_kernel *k);

/* The sign rule of one non-leaf op: 1 if its value is ≥ 0 everywhere given whether its operands'
 * are (a: the left or only operand, b: the right one). */
int gram__op_nonneg(const gram__op *op, int a, int b);
/* NULL if op (a power) is defined on an operand of sign a (nonneg or not), else why not. */
const char *gram__pow_refusal(double exponent, int a);

/* The scalar function of a leaf of structure SQDIST or L1, from its statistic t (scaled r² or
 * scaled L1 distance). For DOT leaves, gram__leaf_dot from s, |x|², |y|². For CONST leaves,
 * gram__leaf_const (same: the pair is a diagonal entry of a symmetric call). */
double gram__leaf_radial(const gram__leaf *L, double t);
/* sin(π r) and cos(π r) for finite r, the phase reduced exactly (the periodic family's, in every
 * path, so that all give the value of their rounded r). */
void gram__sincos_pi(double r, double *s, double *c);
double gram__leaf_dot(const gram__leaf *L, double s, double xx, double yy);
/* The arc-cosine kernel (family.c): J_n(θ)/π from c = cos θ, and the kernel
 * |x|^n |y|^n J_n(θ)/π from s, |x|², |y|²; if dj is not NULL it gets the derivative of the
 * returned value in c (the norms held fixed; 0 at a zero vector and, for n = 0, at θ = 0, π). */
double gram__arccos_angular(int n, double c, double *dj);
double gram__arccos_value(int n, double s, double xx, double yy, double *dj);
double gram__leaf_const(const gram__leaf *L, int same);

/* Logs of the same (only for non-negative leaves; -inf where the value is 0). For families with
 * an exponential form these are computed without exp, so they stay exact where values underflow. */
double gram__leaf_log_radial(const gram__leaf *L, double t);
double gram__leaf_log_dot(const gram__leaf *L, double s, double xx, double yy);
double gram__leaf_log_const(const gram__leaf *L, int same);

/* gram_kernel_eval without its argument checks: returns k(y, x) and, if grad is not NULL, writes
 * its n_hyper derivatives. vs and hs are scratch stacks of k->stack_depth entries. */
double gram__kernel_eval_grad(const gram_kernel *k, int64_t D, const double *y, const double *x,
                              int same, double *grad, double *vs, int64_t *hs);

/* The gradient over a block of pairs (y, x_j), j < B: acc[p] += Σ_j w[j] ∂k(y, x_j)/∂θ_p, by one
 * forward pass of the program over the block's values and one backward pass of adjoints
 * (∂k/∂node), so each leaf's own derivatives are weighted once instead of being rescaled through
 * every op pair by pair. x_j is X + j·ldx; the pair j == same_j is a diagonal entry (white). */
typedef struct gram__grad_ws {
    int B;
    double *vals, *adj, *lg, *gl; /* n_ops×B, n_ops×B, n_hyper×B, one leaf's gradient */
    double *tmp;                  /* B values */
    int *left, *right;            /* children of each op (-1: none) */
    /* Optional elementwise exp (the engine's SIMD one): with it, gaussian, laplacian and Matérn
     * leaves are evaluated a block at a time instead of pair by pair. */
    void (*vexp)(int64_t n, const double *x, double *y);
} gram__grad_ws;
gram_status gram__grad_ws_init(gram__grad_ws *ws, const gram_kernel *k, int B,
                               void (*vexp)(int64_t n, const double *x, double *y));
void gram__grad_ws_free(gram__grad_ws *ws);
void gram__kernel_grad_block(const gram_kernel *k, gram__grad_ws *ws, int64_t D, const double *y,
                             const double *X, int64_t ldx, int B, int same_j, const double *w,
                             double *acc);
/* The same block pair by pair, unweighted: G[j·ldg + p] = ∂k(y, x_j)/∂θ_p for j < B and every
 * hyperparameter p (the rows of scikit-learn's gradient tensor). */
void gram__kernel_grad_pairs(const gram_kernel *k, gram__grad_ws *ws, int64_t D, const double *y,
                             const double *X, int64_t ldx, int B, int same_j, double *G, int64_t ldg);

/* The general Matérn family (matern.c): gram__matern_prepare fills L->bk from L->nu;
 * gram__matern_eval gives k (or log k) at the scaled squared distance t and, if dk is not NULL,
 * ∂k/∂log ℓ for an isotropic lengthscale (the ARD derivatives split it as z_d²/t). */
void gram__matern_prepare(gram__leaf *L);
double gram__matern_eval(const gram__leaf *L, double t, int want_log, double *dk);
#define GRAM__MATERN_NU_MAX 1e4 /* the recurrence takes ~ν steps per pair */

/* 1 if the leaf's values are ≥ 0 everywhere. */
int gram__leaf_nonnegative(const gram__leaf *L);

/* The structure of a family. */
gram_structure gram__family_structure(gram_family f);
const char *gram__family_name(gram_family f);

/* Two leaves share a metric (and so a packed copy of the data) when their structure is the same
 * kind of distance and their inv_scale vectors are equal. */
int gram__leaf_same_metric(const gram__leaf *a, const gram__leaf *b);

/* ---- Construction (kernel.c), shared with the spec parser (spec.c) ------------------------- */

#define GRAM__MAX_PARAMS 3 /* most family parameters of one family (polynomial); bound slots are 1 + this */

/* The bound slot (0 = lengthscale, 1 + i = family parameter i) of a leaf's j-th hyperparameter. */
int gram__leaf_bound_slot(const gram__leaf *L, int64_t j);

/* The family's parameters in gram.h's order: their count, names and defaults. */
int gram__family_n_params(gram_family f);
const char *gram__family_param_name(gram_family f, int i);
double gram__family_param_default(gram_family f, int i);

/* Validates and fills *L (owning its arrays) exactly as gram_kernel_create does; messages are
 * prefixed with where (e.g. "spec: position 7: "). On failure *L owns nothing. */
gram_status gram__leaf_init(gram_context *ctx, const char *where, gram__leaf *L, gram_family f,
                            int64_t n_lengthscales, const double *lengthscales, int n_params,
                            const double *params);
void gram__leaf_free(gram__leaf *L);

/* Hyperparameters of one leaf: its lengthscales (periodic: 1), then its positive non-integer
 * family parameters. */
int64_t gram__leaf_n_hyper(const gram__leaf *L);

/* 1 if v is a whole number. */
int gram__is_integer(double v);

/* Takes k with ops and leaves set (the j-th LEAF op naming leaf j) and fills the derived fields:
 * dim, n_hyper, hyper names, stack_depth, nonnegative, has_white, each leaf's hyper0 and each
 * scale's hyper. On failure destroys k. */
gram_status gram__kernel_finish(gram_context *ctx, gram_kernel *k);

#endif
