/* regress: Gaussian-process and kernel ridge regression on the engine and dense algebra.
 * Internal. */
#ifndef GRAM_REGRESS_H
#define GRAM_REGRESS_H

#include "../base/base.h"
#include "../engine/engine.h"
#include "../kernel/kernel.h"

#define GRAM__LOG_2PI 1.8378770664093454836

struct gram_gp {
    gram_kernel *kernel; /* fitted (learned) */
    int64_t n, d, t;
    double *X;           /* n×d */
    double *Y;           /* n×t, normalised when normalize_y */
    int64_t n_noise;     /* 1 or n */
    double *noise;       /* the alpha option: n_noise values */
    int normalize_y;
    double *ymean, *ystd; /* t each */
    double *L;           /* n×n, lower triangle, zeros above */
    double *alpha;       /* n×t */
    double lml, jitter;
    int64_t n_iter, n_eval;
    int64_t n_starts;    /* optimiser starts run by this fit (0 without optimize or when loaded) */
    int64_t *starts;     /* per start: gram_gp_start_status, iterations */
};

struct gram_krr {
    gram_kernel *kernel;
    int64_t n, d, t;
    double *X;    /* n×d */
    double *dual; /* n×t */
};

/* Whether a Cholesky pivot L_ii is usable for a diagonal entry K_ii: finite, positive and with
 * L_ii² >= eps²·K_ii (one below that is rounding noise; the triangular solves on it overflow).
 * Fitting and loading a model apply the same test, so a fitted model always loads. */
int gram__gp_pivot_ok(double lii, double kii);

/* Validated contiguous float64 copy of a 2-D input (finite values; rows ≥ min_rows). A 1-D-like
 * target (n×1 or 1×n when want_rows = n) is accepted as a column. */
gram_status gram__regress_copy(gram_context *ctx, const gram_array *a, const char *what,
                               double **out);
/* Copies a rows×cols row-major matrix into out (GRAM_ESHAPE if out has another shape; no
 * message: the getters are context-free). */
gram_status gram__regress_copy_out(const double *src, int64_t rows, int64_t cols, gram_array *out);
/* Checks out is a rows×cols array; name for messages. */
gram_status gram__regress_check_out(gram_context *ctx, const gram_array *out, int64_t rows,
                                    int64_t cols, const char *name);

#endif
