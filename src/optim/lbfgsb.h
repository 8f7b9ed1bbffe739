/* optim: L-BFGS-B, bound-constrained limited-memory BFGS (Byrd, Lu, Nocedal & Zhu 1995), for the
 * small problems of hyperparameter learning. Internal.
 *
 * Each iteration finds the generalized Cauchy point of the quadratic model along the projected
 * steepest-descent path, minimises the model over the variables still free there, truncates that
 * step into the box, and runs a strong Wolfe line search along the result. The model matrix
 * B = θI − W M Wᵀ is held densely (n×n, rebuilt from the stored pairs each iteration), so memory
 * is O(n² + m·n) and an iteration costs O(m·n² + n_free³): meant for n up to a few hundred. */
#ifndef GRAM_OPTIM_LBFGSB_H
#define GRAM_OPTIM_LBFGSB_H

#include "../base/base.h"

/* Objective: returns f(x) and writes grad (n values). May return +INFINITY or NaN to say "not
 * defined here" (e.g. a Cholesky failed): the line search then shrinks the step; a non-finite
 * gradient with a finite value counts the same. The derivatives in fixed variables
 * (lower == upper) are not used and may be anything. To abort, set *status to a non-OK
 * gram_status (with the context message already set): gram__lbfgsb returns it unchanged.
 * *status is GRAM_OK on entry. */
typedef double (*gram__objective)(void *user, const double *x, double *grad, gram_status *status);

typedef struct gram__lbfgsb_options {
    int memory;   /* m, the number of correction pairs kept; default 10, at least 1 */
    int max_iter; /* iterations (accepted steps); default 15000, 0 only evaluates the start */
    int max_eval; /* objective evaluations, the start's included; default 15000, at least 1 */
    double pgtol; /* stop when max_i |proj grad_i| <= pgtol; default 1e-5 (SciPy's default) */
    double factr; /* stop when (f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= factr·eps; default 1e7 */
} gram__lbfgsb_options;

void gram__lbfgsb_options_init(gram__lbfgsb_options *o);

typedef enum {
    GRAM__LBFGSB_CONV_PGTOL,
    GRAM__LBFGSB_CONV_FACTR,
    GRAM__LBFGSB_MAX_ITER,
    GRAM__LBFGSB_MAX_EVAL,
    GRAM__LBFGSB_LINE_SEARCH_FAILED /* no acceptable step even from a fresh memory (f is flat to
                                       rounding along the search direction, or the gradient is
                                       inconsistent with f) */
} gram__lbfgsb_reason;

typedef struct gram__lbfgsb_result {
    double f;        /* f at the returned x */
    double pgnorm;   /* max_i |proj grad_i| at the returned x */
    int iterations;  /* accepted steps */
    int evaluations; /* objective calls, the start's included */
    int resets;      /* times the memory was dropped (not a descent direction, failed line search) */
    gram__lbfgsb_reason reason;
} gram__lbfgsb_result;

/* Minimises f over lower <= x <= upper (lower[i] may be -INFINITY, upper[i] +INFINITY; either
 * array may be NULL for no bounds on that side; lower[i] == upper[i] fixes x[i]). x holds the start
 * on entry (it is projected into the box first) and on return the last accepted iterate, which is
 * the best point found (res->f is f there; the gradient there is the last one the objective
 * wrote for it, not kept: call the objective again if it is needed). opt may be NULL for the
 * defaults. Returns GRAM_OK also when it stops for max_iter, max_eval or a failed line search
 * (res->reason says which); GRAM_EINVAL for bad arguments (n < 0, NULL pointers, NaN or
 * wrong-signed infinite bounds, lower > upper, a NaN start, a start that is infinite after
 * projection, bad options); GRAM_ENOMEM; GRAM_EDOMAIN if f or its gradient is not finite at the
 * projected start; or the objective's own status (x then holds the last accepted iterate and res
 * the counts so far). Never prints. n == 0 returns after one evaluation. */
gram_status gram__lbfgsb(gram_context *ctx, int n, double *x, const double *lower, const double *upper,
                         gram__objective f, void *user, const gram__lbfgsb_options *opt,
                         gram__lbfgsb_result *res);

#endif
