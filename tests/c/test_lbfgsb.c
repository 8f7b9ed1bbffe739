/* L-BFGS-B: minimisers with closed forms (Rosenbrock, box-constrained quadratics), the KKT
 * conditions at constrained solutions, fixed and one-sided bounds, projected starts, objectives
 * that are undefined in part of the space, an independent solver for a dense box QP, the stopping
 * reasons, the argument checks and the propagation of an objective's own status. */
#include "check.h"
#include "optim/lbfgsb.h"

#include <math.h>
#include <string.h>

static gram_context *ctx;

/* A tiny LCG (Knuth's MMIX constants) so the random problems do not depend on anything else. */
static uint64_t lcg_state;
static double lcg_uniform(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg_state >> 11) * 0x1.0p-53;
}

static gram__lbfgsb_options tight(void)
{
    gram__lbfgsb_options o;
    gram__lbfgsb_options_init(&o);
    o.pgtol = 1e-10;
    o.factr = 0.0;
    return o;
}

/* ---- objectives ------------------------------------------------------------------------- */

typedef struct {
    int calls;
    int paired; /* extended (pairs) Rosenbrock instead of the chained one */
} rosen_data;

/* Chained: Σ 100(x_{i+1} − x_i²)² + (1 − x_i)²; paired: the same over (x_0,x_1), (x_2,x_3), ... */
static int rosen_n;
static double rosen(void *user, const double *x, double *g, gram_status *status)
{
    rosen_data *r = user;
    (void)status;
    r->calls++;
    int n = rosen_n, step = r->paired ? 2 : 1;
    double f = 0.0;
    for (int i = 0; i < n; i++) g[i] = 0.0;
    for (int i = 0; i + 1 < n; i += step) {
        double a = x[i + 1] - x[i] * x[i], b = 1.0 - x[i];
        f += 100.0 * a * a + b * b;
        g[i] += -400.0 * x[i] * a - 2.0 * b;
        g[i + 1] += 200.0 * a;
    }
    return f;
}

typedef struct {
    int n;
    const double *A; /* n×n row-major, or NULL with diag */
    const double *diag;
    const double *b;
    int calls;
} quad_data;

/* ½ xᵀAx − bᵀx */
static double quadratic(void *user, const double *x, double *g, gram_status *status)
{
    quad_data *q = user;
    (void)status;
    q->calls++;
    double f = 0.0;
    for (int i = 0; i < q->n; i++) {
        double Ax = 0.0;
        if (q->A)
            for (int j = 0; j < q->n; j++) Ax += q->A[i * q->n + j] * x[j];
        else Ax = q->diag[i] * x[i];
        g[i] = Ax - q->b[i];
        f += 0.5 * x[i] * Ax - q->b[i] * x[i];
    }
    return f;
}

/* KKT for min f over [l, u]: free components have zero gradient, a component at its lower bound
 * has g >= 0 (f grows inward), at its upper bound g <= 0. */
static void check_kkt(int n, const double *x, const double *g, const double *l, const double *u,
                      double tol, const char *what)
{
    for (int i = 0; i < n; i++) {
        CHECK(x[i] >= l[i] && x[i] <= u[i], "%s: x[%d] = %.17g outside [%g, %g]", what, i, x[i], l[i], u[i]);
        if (x[i] == l[i] && x[i] == u[i]) continue;
        if (x[i] == l[i]) CHECK(g[i] >= -tol, "%s: x[%d] at lower bound with g = %.3g", what, i, g[i]);
        else if (x[i] == u[i]) CHECK(g[i] <= tol, "%s: x[%d] at upper bound with g = %.3g", what, i, g[i]);
        else CHECK(fabs(g[i]) <= tol, "%s: free x[%d] = %.6g has g = %.3g", what, i, x[i], g[i]);
    }
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_rosenbrock_2d(void)
{
    rosen_data r = {0, 0};
    rosen_n = 2;
    double x[2] = {-1.2, 1.0};
    gram__lbfgsb_options o = tight();
    gram__lbfgsb_result res;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, NULL, NULL, rosen, &r, &o, &res), GRAM_OK);
    CHECK_CLOSE(x[0], 1.0, 0, 1e-5, "rosenbrock x0");
    CHECK_CLOSE(x[1], 1.0, 0, 1e-5, "rosenbrock x1");
    CHECK(res.f < 1e-12, "rosenbrock f = %g", res.f);
    CHECK(res.iterations < 100, "rosenbrock took %d iterations", res.iterations);
    CHECK(res.evaluations == r.calls, "evaluations %d, objective saw %d", res.evaluations, r.calls);
    CHECK(res.reason == GRAM__LBFGSB_CONV_PGTOL || res.reason == GRAM__LBFGSB_CONV_FACTR ||
              res.reason == GRAM__LBFGSB_LINE_SEARCH_FAILED,
          "rosenbrock reason %d", (int)res.reason);
    printf("rosenbrock 2-D (tight): %d iterations, %d evaluations, f = %.3g, reason %d\n",
           res.iterations, res.evaluations, res.f, (int)res.reason);

    /* Default tolerances: stops on pgtol or factr near the minimum, in few iterations. */
    double y[2] = {-1.2, 1.0};
    r.calls = 0;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, y, NULL, NULL, rosen, &r, NULL, &res), GRAM_OK);
    CHECK_CLOSE(y[0], 1.0, 0, 1e-3, "rosenbrock default x0");
    CHECK_CLOSE(y[1], 1.0, 0, 2e-3, "rosenbrock default x1");
    CHECK(res.reason == GRAM__LBFGSB_CONV_PGTOL || res.reason == GRAM__LBFGSB_CONV_FACTR,
          "rosenbrock default reason %d", (int)res.reason);
    CHECK(res.iterations < 60, "rosenbrock (defaults) took %d iterations", res.iterations);
    printf("rosenbrock 2-D (defaults): %d iterations, %d evaluations, f = %.3g, reason %d\n",
           res.iterations, res.evaluations, res.f, (int)res.reason);
}

static void test_rosenbrock_10(void)
{
    for (int paired = 1; paired >= 0; paired--) {
        rosen_data r = {0, paired};
        rosen_n = 10;
        double x[10];
        for (int i = 0; i < 10; i++) x[i] = i % 2 ? 1.0 : -1.2;
        gram__lbfgsb_options o = tight();
        gram__lbfgsb_result res;
        CHECK_STATUS(gram__lbfgsb(ctx, 10, x, NULL, NULL, rosen, &r, &o, &res), GRAM_OK);
        for (int i = 0; i < 10; i++) CHECK_CLOSE(x[i], 1.0, 0, 1e-5, paired ? "extended rosenbrock" : "chained rosenbrock");
        CHECK(res.iterations < 200, "rosenbrock 10 took %d iterations", res.iterations);
        printf("rosenbrock n=10 (%s): %d iterations, %d evaluations, f = %.3g\n",
               paired ? "extended" : "chained", res.iterations, res.evaluations, res.f);
    }
}

static void test_rosenbrock_bounded(void)
{
    rosen_data r = {0, 0};
    rosen_n = 2;
    double l[2] = {-2, -2}, u[2] = {0.5, 2}, x[2] = {-1.2, 1.0}, g[2];
    gram__lbfgsb_options o = tight();
    gram__lbfgsb_result res;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, u, rosen, &r, &o, &res), GRAM_OK);
    CHECK(x[0] == 0.5, "bounded rosenbrock x0 = %.17g, want exactly the bound 0.5", x[0]);
    CHECK_CLOSE(x[1], 0.25, 0, 1e-8, "bounded rosenbrock x1");
    gram_status st = GRAM_OK;
    double f = rosen(&r, x, g, &st);
    CHECK_CLOSE(f, 0.25, 1e-12, 1e-14, "bounded rosenbrock f");
    CHECK_CLOSE(res.f, f, 0, 0, "res.f is f at the returned x");
    CHECK_CLOSE(g[0], -1.0, 1e-6, 0, "bounded rosenbrock g0 (outward)");
    check_kkt(2, x, g, l, u, 1e-8, "bounded rosenbrock");
    CHECK(res.iterations < 60, "bounded rosenbrock took %d iterations", res.iterations);
    printf("rosenbrock on [-2,0.5]x[-2,2]: %d iterations, %d evaluations\n", res.iterations, res.evaluations);
}

static void test_diagonal_quadratic(void)
{
    enum { N = 12 };
    double a[N], b[N], l[N], u[N], x[N], want[N];
    lcg_state = 7;
    for (int i = 0; i < N; i++) {
        a[i] = 0.1 + 10.0 * lcg_uniform();
        b[i] = 4.0 * lcg_uniform() - 2.0;
        l[i] = -1.0 + 0.5 * lcg_uniform();
        u[i] = 0.5 * lcg_uniform();
        /* some one-sided, some unbounded */
        if (i % 4 == 1) l[i] = -INFINITY;
        if (i % 4 == 2) u[i] = INFINITY;
        if (i == 3) l[i] = -INFINITY, u[i] = INFINITY;
        x[i] = 0.0;
        double s = b[i] / a[i];
        want[i] = s < l[i] ? l[i] : s > u[i] ? u[i] : s;
    }
    quad_data q = {N, NULL, a, b, 0};
    /* From the origin, from every finite lower bound, from every finite upper bound (variables
     * on a bound with the gradient pointing inward must leave it), with a long and a short memory. */
    for (int start = 0; start < 6; start++) {
        for (int i = 0; i < N; i++) {
            double v = start % 3 == 1 ? l[i] : start % 3 == 2 ? u[i] : 0.0;
            x[i] = isfinite(v) ? v : 0.0;
        }
        gram__lbfgsb_options o = tight();
        if (start >= 3) o.memory = 1;
        gram__lbfgsb_result res;
        CHECK_STATUS(gram__lbfgsb(ctx, N, x, l, u, quadratic, &q, &o, &res), GRAM_OK);
        int active = 0;
        for (int i = 0; i < N; i++) {
            if (want[i] == l[i] || want[i] == u[i]) {
                active++;
                CHECK(x[i] == want[i], "diagonal QP: active x[%d] = %.17g, want the bound %.17g", i, x[i], want[i]);
            } else CHECK_CLOSE(x[i], want[i], 0, 1e-7, "diagonal QP free component");
        }
        CHECK(active >= 3 && active <= N - 3, "diagonal QP: %d active bounds, want a mix", active);
        /* Where f stops resolving decreases (f changes below an ulp) the line search gives up;
         * the projected gradient is then far below pgtol's default but not at 1e-10. */
        CHECK(res.pgnorm < 1e-7, "diagonal QP: projected gradient %.3g", res.pgnorm);
        CHECK(res.iterations < 40, "diagonal QP took %d iterations", res.iterations);
        printf("diagonal box QP n=%d (%d active), start %d, memory %d: %d iterations, %d evaluations, pg %.2g\n",
               N, active, start, o.memory, res.iterations, res.evaluations, res.pgnorm);
    }
}

/* Dense SPD box QP, checked by KKT and against projected Gauss-Seidel (which converges to the
 * unique minimiser of a strictly convex box QP). */
static void test_dense_quadratic(void)
{
    enum { N = 20 };
    static double A[N * N], M[N * N];
    double b[N], l[N], u[N], x[N], g[N], ref[N];
    lcg_state = 12345;
    for (int i = 0; i < N * N; i++) M[i] = 2.0 * lcg_uniform() - 1.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = i == j ? 0.5 : 0.0;
            for (int k = 0; k < N; k++) s += M[k * N + i] * M[k * N + j];
            A[i * N + j] = s;
        }
    for (int i = 0; i < N; i++) {
        b[i] = 6.0 * lcg_uniform() - 3.0;
        l[i] = -0.5 - lcg_uniform();
        u[i] = 0.5 + lcg_uniform();
        x[i] = 2.0 * lcg_uniform() - 1.0;
        ref[i] = 0.0;
    }
    for (int sweep = 0; sweep < 200000; sweep++) {
        double change = 0.0;
        for (int i = 0; i < N; i++) {
            double r = b[i];
            for (int j = 0; j < N; j++)
                if (j != i) r -= A[i * N + j] * ref[j];
            double v = r / A[i * N + i];
            v = v < l[i] ? l[i] : v > u[i] ? u[i] : v;
            change = fmax(change, fabs(v - ref[i]));
            ref[i] = v;
        }
        if (change < 1e-15) break;
    }
    quad_data q = {N, A, NULL, b, 0};
    gram__lbfgsb_options o = tight();
    gram__lbfgsb_result res;
    CHECK_STATUS(gram__lbfgsb(ctx, N, x, l, u, quadratic, &q, &o, &res), GRAM_OK);
    gram_status st = GRAM_OK;
    quadratic(&q, x, g, &st);
    check_kkt(N, x, g, l, u, 1e-6, "dense QP");
    int active = 0;
    for (int i = 0; i < N; i++) {
        active += x[i] == l[i] || x[i] == u[i];
        CHECK_CLOSE(x[i], ref[i], 0, 1e-7, "dense QP vs projected Gauss-Seidel");
    }
    CHECK(active >= 2 && active <= N - 2, "dense QP: %d active bounds, want a mix", active);
    CHECK(res.iterations < 200, "dense QP took %d iterations", res.iterations);
    printf("dense box QP n=%d (%d active): %d iterations, %d evaluations, reason %d\n", N, active,
           res.iterations, res.evaluations, (int)res.reason);

    /* Unconstrained: the solution of A x = b, so A x − b must vanish. */
    for (int i = 0; i < N; i++) x[i] = 0.0;
    CHECK_STATUS(gram__lbfgsb(ctx, N, x, NULL, NULL, quadratic, &q, &o, &res), GRAM_OK);
    quadratic(&q, x, g, &st);
    double gmax = 0.0;
    for (int i = 0; i < N; i++) gmax = fmax(gmax, fabs(g[i]));
    CHECK(gmax < 1e-6, "unconstrained dense QP: residual %.3g", gmax);
    CHECK(res.pgnorm == gmax, "res.pgnorm %.17g is the gradient's max norm %.17g", res.pgnorm, gmax);
    printf("dense QP n=%d unconstrained: %d iterations\n", N, res.iterations);
}

/* A larger dense box QP (n = 150, memory 5): KKT to 1e-6 and a modest iteration count. */
static void test_larger_quadratic(void)
{
    enum { N = 150 };
    static double A[N * N], M[N * N];
    double b[N], l[N], u[N], x[N], g[N];
    lcg_state = 99;
    for (int i = 0; i < N * N; i++) M[i] = 2.0 * lcg_uniform() - 1.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = i == j ? 5.0 : 0.0;
            for (int k = 0; k < N; k++) s += M[k * N + i] * M[k * N + j] / N;
            A[i * N + j] = s;
        }
    for (int i = 0; i < N; i++) {
        b[i] = 6.0 * lcg_uniform() - 3.0;
        l[i] = -0.5;
        u[i] = i % 3 ? 0.5 : INFINITY;
        x[i] = 0.0;
    }
    quad_data q = {N, A, NULL, b, 0};
    gram__lbfgsb_options o;
    gram__lbfgsb_options_init(&o);
    o.memory = 5;
    o.pgtol = 1e-8;
    o.factr = 0;
    gram__lbfgsb_result res;
    CHECK_STATUS(gram__lbfgsb(ctx, N, x, l, u, quadratic, &q, &o, &res), GRAM_OK);
    gram_status st = GRAM_OK;
    quadratic(&q, x, g, &st);
    check_kkt(N, x, g, l, u, 1e-6, "n=150 QP");
    int active = 0;
    for (int i = 0; i < N; i++) active += x[i] == l[i] || x[i] == u[i];
    CHECK(active > 10 && active < N - 10, "n=150 QP: %d active", active);
    CHECK(res.iterations < 300, "n=150 QP took %d iterations", res.iterations);
    printf("dense box QP n=%d (%d active), memory 5: %d iterations, %d evaluations, reason %d, pg %.2g\n", N, active,
           res.iterations, res.evaluations, (int)res.reason, res.pgnorm);
}

static void test_fixed_variables(void)
{
    enum { N = 6 };
    double a[N] = {1, 2, 3, 4, 5, 6}, b[N] = {3, -1, 2, 5, -4, 1};
    double l[N] = {-10, 0.3, -10, 1.0 / 3.0, -10, -10}, u[N] = {10, 0.3, 10, 1.0 / 3.0, 10, 10};
    double x[N] = {0, 0, 0, 0, 0, 0};
    quad_data q = {N, NULL, a, b, 0};
    gram__lbfgsb_options o = tight();
    gram__lbfgsb_result res;
    CHECK_STATUS(gram__lbfgsb(ctx, N, x, l, u, quadratic, &q, &o, &res), GRAM_OK);
    CHECK(x[1] == 0.3, "fixed x[1] = %.17g", x[1]);
    CHECK(x[3] == 1.0 / 3.0, "fixed x[3] = %.17g", x[3]);
    for (int i = 0; i < N; i++)
        if (i != 1 && i != 3) CHECK_CLOSE(x[i], b[i] / a[i], 0, 1e-7, "free beside fixed");

    /* All fixed: nothing moves, it stops at once. */
    double xf[3] = {5, -5, 0}, lf[3] = {1, 2, 3};
    quad_data qf = {3, NULL, a, b, 0};
    CHECK_STATUS(gram__lbfgsb(ctx, 3, xf, lf, lf, quadratic, &qf, &o, &res), GRAM_OK);
    CHECK(xf[0] == 1 && xf[1] == 2 && xf[2] == 3, "all fixed: %g %g %g", xf[0], xf[1], xf[2]);
    CHECK(res.reason == GRAM__LBFGSB_CONV_PGTOL && res.evaluations == 1 && res.iterations == 0,
          "all fixed: reason %d, %d evaluations", (int)res.reason, res.evaluations);
}

/* Records every point the objective sees, to check that all lie in the box. */
typedef struct {
    quad_data q;
    const double *l, *u;
    int outside;
} boxed_data;

static double boxed_quadratic(void *user, const double *x, double *g, gram_status *status)
{
    boxed_data *d = user;
    for (int i = 0; i < d->q.n; i++) d->outside += !(x[i] >= d->l[i] && x[i] <= d->u[i]);
    return quadratic(&d->q, x, g, status);
}

static void test_one_sided_and_projected_start(void)
{
    enum { N = 4 };
    double a[N] = {1, 1, 2, 0.5}, b[N] = {-3, 3, 1, 1};
    /* x0 >= -1 (active: wants -3), x1 <= 2 (active: wants 3), x2 >= 0 (free: 0.5), x3 <= 5 (free: 2). */
    double l[N] = {-1, -INFINITY, 0, -INFINITY}, u[N] = {INFINITY, 2, INFINITY, 5};
    double x[N] = {-50, 40, -7, 100}; /* outside on every side that has a bound */
    boxed_data d = {{N, NULL, a, b, 0}, l, u, 0};
    gram__lbfgsb_options o = tight();
    gram__lbfgsb_result res;
    CHECK_STATUS(gram__lbfgsb(ctx, N, x, l, u, boxed_quadratic, &d, &o, &res), GRAM_OK);
    CHECK(d.outside == 0, "the objective saw %d coordinates outside the box", d.outside);
    CHECK(x[0] == -1.0 && x[1] == 2.0, "one-sided active: %.17g %.17g", x[0], x[1]);
    CHECK_CLOSE(x[2], 0.5, 0, 1e-7, "one-sided free x2");
    CHECK_CLOSE(x[3], 2.0, 0, 1e-7, "one-sided free x3");
}

/* Σ (x_i − 4)² − log(3 − x_i): undefined (+∞, or NaN when nan_mode) for x_i >= 3; the minimiser
 * solves 2(x − 4) + 1/(3 − x) = 0, i.e. x = (7 − √3)/2. */
typedef struct {
    int n, calls, undefined, nan_mode;
} barrier_data;

static double barrier(void *user, const double *x, double *g, gram_status *status)
{
    barrier_data *d = user;
    (void)status;
    d->calls++;
    double f = 0.0;
    for (int i = 0; i < d->n; i++) {
        if (!(x[i] < 3.0)) {
            d->undefined++;
            for (int j = 0; j < d->n; j++) g[j] = d->nan_mode ? NAN : 0.0;
            return d->nan_mode ? NAN : INFINITY;
        }
        f += (x[i] - 4.0) * (x[i] - 4.0) - log(3.0 - x[i]);
        g[i] = 2.0 * (x[i] - 4.0) + 1.0 / (3.0 - x[i]);
    }
    return f;
}

static void test_undefined_region(void)
{
    const double want = (7.0 - sqrt(3.0)) / 2.0;
    for (int nan_mode = 0; nan_mode <= 1; nan_mode++) {
        barrier_data d = {3, 0, 0, nan_mode};
        double x[3] = {0.0, -2.0, 2.5};
        gram__lbfgsb_options o = tight();
        gram__lbfgsb_result res;
        CHECK_STATUS(gram__lbfgsb(ctx, 3, x, NULL, NULL, barrier, &d, &o, &res), GRAM_OK);
        for (int i = 0; i < 3; i++) CHECK_CLOSE(x[i], want, 1e-9, 0, "barrier minimiser");
        CHECK(d.undefined > 0, "the undefined region was never probed (nan_mode %d)", nan_mode);
        CHECK(isfinite(res.f), "barrier f not finite");
        printf("barrier (%s outside): %d iterations, %d evaluations, %d undefined\n",
               nan_mode ? "NaN" : "+inf", res.iterations, res.evaluations, d.undefined);
    }
}

typedef struct {
    int calls;
} abort_data;

static double aborting(void *user, const double *x, double *g, gram_status *status)
{
    abort_data *d = user;
    if (++d->calls > 5) {
        *status = GRAM_ECANCELLED;
        return 0.0;
    }
    g[0] = 2.0 * (x[0] - 1.0);
    g[1] = 20.0 * (x[1] + 2.0);
    return (x[0] - 1.0) * (x[0] - 1.0) + 10.0 * (x[1] + 2.0) * (x[1] + 2.0);
}

static void test_abort(void)
{
    abort_data d = {0};
    double x[2] = {10, 10};
    gram__lbfgsb_result res;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, NULL, NULL, aborting, &d, NULL, &res), GRAM_ECANCELLED);
    CHECK(d.calls == 6, "objective called %d times, want 6", d.calls);
    CHECK(res.evaluations == 6, "res.evaluations %d", res.evaluations);
    CHECK(isfinite(x[0]) && isfinite(x[1]), "x after abort: %g %g", x[0], x[1]);
    /* x is the last accepted iterate, and res.f is f there. */
    double g[2];
    gram_status st = GRAM_OK;
    d.calls = 0;
    double f = aborting(&d, x, g, &st);
    CHECK_CLOSE(res.f, f, 0, 0, "res.f after abort");
    CHECK(f <= 81.0 + 10.0 * 144.0, "f after abort %g above the start's", f);
}

static double zero_dim(void *user, const double *x, double *g, gram_status *status)
{
    (void)x, (void)g, (void)status;
    ++*(int *)user;
    return 42.0;
}

static double not_finite(void *user, const double *x, double *g, gram_status *status)
{
    (void)status;
    int mode = *(int *)user;
    g[0] = mode == 1 ? NAN : 1.0;
    return mode == 0 ? INFINITY : x[0];
}

/* Gradient of the wrong sign: no step can decrease f along the "descent" direction. */
static double wrong_gradient(void *user, const double *x, double *g, gram_status *status)
{
    (void)user, (void)status;
    g[0] = -2.0 * x[0];
    return x[0] * x[0];
}

static void test_arguments(void)
{
    gram__lbfgsb_result res;
    gram__lbfgsb_options o;
    gram__lbfgsb_options_init(&o);
    CHECK(o.memory == 10 && o.max_iter == 15000 && o.max_eval == 15000 && o.pgtol == 1e-5 && o.factr == 1e7,
          "default options");
    double x[2] = {0, 0}, l[2] = {0, 0}, u[2] = {1, 1};
    rosen_data r = {0, 0};
    rosen_n = 2;
    CHECK_STATUS(gram__lbfgsb(ctx, -1, x, l, u, rosen, &r, NULL, &res), GRAM_EINVAL);
    CHECK(gram_context_message(ctx)[0] != '\0', "EINVAL without a message");
    CHECK_STATUS(gram__lbfgsb(ctx, 2, NULL, l, u, rosen, &r, NULL, &res), GRAM_EINVAL);
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, u, NULL, &r, NULL, &res), GRAM_EINVAL);
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, u, rosen, &r, NULL, NULL), GRAM_EINVAL);
    double bad_l[2] = {0, 2};
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, bad_l, u, rosen, &r, NULL, &res), GRAM_EINVAL);
    double nan_l[2] = {0, NAN};
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, nan_l, u, rosen, &r, NULL, &res), GRAM_EINVAL);
    double nan_u[2] = {NAN, 1};
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, nan_u, rosen, &r, NULL, &res), GRAM_EINVAL);
    double inf_l[2] = {INFINITY, 0}, inf_u[2] = {INFINITY, INFINITY};
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, inf_l, inf_u, rosen, &r, NULL, &res), GRAM_EINVAL);
    double minf[2] = {-INFINITY, -INFINITY};
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, minf, minf, rosen, &r, NULL, &res), GRAM_EINVAL);
    double xnan[2] = {NAN, 0};
    CHECK_STATUS(gram__lbfgsb(ctx, 2, xnan, l, u, rosen, &r, NULL, &res), GRAM_EINVAL);
    double xinf[2] = {INFINITY, 0};
    CHECK_STATUS(gram__lbfgsb(ctx, 2, xinf, NULL, NULL, rosen, &r, NULL, &res), GRAM_EINVAL);
    /* ... but an infinite start that projects onto a finite bound is fine. */
    double xinf2[2] = {INFINITY, -INFINITY};
    CHECK_STATUS(gram__lbfgsb(ctx, 2, xinf2, l, u, rosen, &r, NULL, &res), GRAM_OK);
    CHECK(xinf2[0] >= 0 && xinf2[0] <= 1 && xinf2[1] >= 0 && xinf2[1] <= 1, "projected infinite start");
    gram__lbfgsb_options bad = o;
    bad.memory = 0;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, u, rosen, &r, &bad, &res), GRAM_EINVAL);
    bad = o, bad.max_eval = 0;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, u, rosen, &r, &bad, &res), GRAM_EINVAL);
    bad = o, bad.max_iter = -1;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, u, rosen, &r, &bad, &res), GRAM_EINVAL);
    bad = o, bad.pgtol = NAN;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, u, rosen, &r, &bad, &res), GRAM_EINVAL);
    bad = o, bad.factr = -1;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, u, rosen, &r, &bad, &res), GRAM_EINVAL);

    /* Non-finite at the start: EDOMAIN with a message, for an infinite f and for a NaN gradient. */
    for (int mode = 0; mode <= 1; mode++) {
        double x1[1] = {0.5};
        gram__clear(ctx);
        CHECK_STATUS(gram__lbfgsb(ctx, 1, x1, NULL, NULL, not_finite, &mode, NULL, &res), GRAM_EDOMAIN);
        CHECK(strstr(gram_context_message(ctx), "start") != NULL, "EDOMAIN message: %s", gram_context_message(ctx));
    }

    /* n == 0: one evaluation. */
    int calls = 0;
    CHECK_STATUS(gram__lbfgsb(ctx, 0, NULL, NULL, NULL, zero_dim, &calls, NULL, &res), GRAM_OK);
    CHECK(calls == 1 && res.evaluations == 1 && res.f == 42.0 && res.iterations == 0,
          "n = 0: %d calls, f %g", calls, res.f);
}

static void test_stopping_reasons(void)
{
    rosen_data r = {0, 0};
    rosen_n = 2;
    gram__lbfgsb_options o = tight();
    gram__lbfgsb_result res;
    double x[2] = {-1.2, 1.0};
    o.max_iter = 3;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, NULL, NULL, rosen, &r, &o, &res), GRAM_OK);
    CHECK(res.reason == GRAM__LBFGSB_MAX_ITER && res.iterations == 3, "max_iter: reason %d, %d iterations",
          (int)res.reason, res.iterations);
    CHECK(res.f < 24.2, "three iterations did not decrease f: %g", res.f);

    o = tight();
    o.max_eval = 10;
    x[0] = -1.2, x[1] = 1.0, r.calls = 0;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, NULL, NULL, rosen, &r, &o, &res), GRAM_OK);
    CHECK(res.reason == GRAM__LBFGSB_MAX_EVAL && res.evaluations <= 10 && r.calls == res.evaluations,
          "max_eval: reason %d, %d evaluations", (int)res.reason, res.evaluations);
    gram_status st = GRAM_OK;
    double g[2], f = rosen(&r, x, g, &st);
    CHECK_CLOSE(res.f, f, 0, 0, "res.f at max_eval");

    o = tight();
    o.max_iter = 0;
    x[0] = -1.2, x[1] = 1.0;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, NULL, NULL, rosen, &r, &o, &res), GRAM_OK);
    CHECK(res.reason == GRAM__LBFGSB_MAX_ITER && res.evaluations == 1 && x[0] == -1.2 && x[1] == 1.0,
          "max_iter 0: reason %d, %d evaluations", (int)res.reason, res.evaluations);

    /* Defaults stop by factr or pgtol. */
    x[0] = -1.2, x[1] = 1.0;
    o = tight();
    o.factr = 1e12, o.pgtol = 0;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, NULL, NULL, rosen, &r, &o, &res), GRAM_OK);
    CHECK(res.reason == GRAM__LBFGSB_CONV_FACTR, "factr: reason %d", (int)res.reason);

    /* A gradient of the wrong sign: no descent possible, x stays, f is f(start). */
    double w[1] = {2.0};
    o = tight();
    CHECK_STATUS(gram__lbfgsb(ctx, 1, w, NULL, NULL, wrong_gradient, NULL, &o, &res), GRAM_OK);
    CHECK(res.reason == GRAM__LBFGSB_LINE_SEARCH_FAILED, "wrong gradient: reason %d", (int)res.reason);
    CHECK(w[0] == 2.0 && res.f == 4.0, "wrong gradient moved x to %g (f %g)", w[0], res.f);
}

/* Like a GP marginal likelihood in log-parameters: exponentials, curvatures far apart, and a bound
 * that binds: f = e^a − 2a + 50 (e^{−b} + b) + (a − b)² with a in [−5, 0.2] (free, a would be
 * about 0.69). */
static double stiff(void *user, const double *x, double *g, gram_status *status)
{
    (void)user, (void)status;
    double a = x[0], b = x[1];
    g[0] = exp(a) - 2.0 + 2.0 * (a - b);
    g[1] = 50.0 * (1.0 - exp(-b)) - 2.0 * (a - b);
    return exp(a) - 2.0 * a + 50.0 * (exp(-b) + b) + (a - b) * (a - b);
}

static void test_stiff_bounded(void)
{
    double l[2] = {-5, -INFINITY}, u[2] = {0.2, INFINITY}, x[2] = {-4, 3}, g[2];
    gram__lbfgsb_options o = tight();
    gram__lbfgsb_result res;
    CHECK_STATUS(gram__lbfgsb(ctx, 2, x, l, u, stiff, NULL, &o, &res), GRAM_OK);
    gram_status st = GRAM_OK;
    stiff(NULL, x, g, &st);
    check_kkt(2, x, g, l, u, 1e-8, "stiff");
    CHECK(x[0] == 0.2, "stiff: a = %.17g should sit on its upper bound", x[0]);
    printf("stiff bounded: %d iterations, x = (%.10g, %.10g)\n", res.iterations, x[0], x[1]);
}

/* An ill-conditioned convex box problem in the shape of a likelihood in log-parameters,
 * f(x) = ½ xᵀAx − bᵀx + 0.1 Σ e^{x_i} on [−2, 2]^10, A = DTD with T = tridiag(−1, 2.01, −1) and
 * D = diag(10^{i/3 − 1.5}) (cond A ≈ 2e6; four bounds active at the minimiser), optionally with an
 * extra variable z fixed by lower == upper that adds P (z − 1) Σ e^{x_i}: nothing at z = 1, but
 * ∂f/∂z = P Σ e^{x_i} is large and changes with every step, as the derivative in a fixed period
 * does in a GP likelihood. The fixed variable must change nothing. SciPy 1.17's L-BFGS-B
 * (m = 10, factr 1e7, pgtol 1e-5, from x = 0) takes 40 iterations (44 evaluations) without z and
 * 360 (369) when given z with lower == upper, because it then keeps z's derivative in
 * y = g_{k+1} − g_k (and in θ = yᵀy / sᵀy) while s is 0 there. */
enum { ILL_N = 10 };
typedef struct {
    double A[ILL_N * ILL_N], b[ILL_N], penalty;
    int with_fixed;
} ill_data;

static double ill_conditioned(void *user, const double *x, double *g, gram_status *status)
{
    const ill_data *d = user;
    (void)status;
    double f = 0.0, h = 0.0, z = d->with_fixed ? x[ILL_N] - 1.0 : 0.0;
    for (int i = 0; i < ILL_N; i++) {
        double Ax = 0.0, e = exp(x[i]);
        for (int j = 0; j < ILL_N; j++) Ax += d->A[i * ILL_N + j] * x[j];
        f += 0.5 * x[i] * Ax - d->b[i] * x[i] + 0.1 * e;
        g[i] = Ax - d->b[i] + (0.1 + d->penalty * z) * e;
        h += e;
    }
    if (d->with_fixed) g[ILL_N] = d->penalty * h;
    return f + d->penalty * z * h;
}

static void test_fixed_variable_curvature(void)
{
    const int scipy_iterations = 40;
    const double f_min = -10.895090991294555; /* SciPy with ftol 0, gtol 1e-12 */
    ill_data d = {.penalty = 1e3};
    double l[ILL_N + 1], u[ILL_N + 1], x[ILL_N + 1], plain[ILL_N] = {0};
    for (int i = 0; i < ILL_N; i++) {
        double si = pow(10.0, i / 3.0 - 1.5);
        for (int j = 0; j < ILL_N; j++) {
            double t = i == j ? 2.01 : i - j == 1 || j - i == 1 ? -1.0 : 0.0;
            d.A[i * ILL_N + j] = si * t * pow(10.0, j / 3.0 - 1.5);
        }
        d.b[i] = (i % 2 ? -1.0 : 1.0) * (1.0 + i / 3.0);
    }
    for (int with_fixed = 0; with_fixed <= 1; with_fixed++) {
        for (int i = 0; i < ILL_N; i++) x[i] = 0.0, l[i] = -2.0, u[i] = 2.0;
        x[ILL_N] = l[ILL_N] = u[ILL_N] = 1.0;
        d.with_fixed = with_fixed;
        gram__lbfgsb_result res;
        CHECK_STATUS(gram__lbfgsb(ctx, ILL_N + with_fixed, x, l, u, ill_conditioned, &d, NULL, &res), GRAM_OK);
        CHECK(res.reason == GRAM__LBFGSB_CONV_FACTR || res.reason == GRAM__LBFGSB_CONV_PGTOL,
              "ill-conditioned box problem (%d): reason %d", with_fixed, (int)res.reason);
        CHECK(res.iterations <= 3 * scipy_iterations / 2,
              "ill-conditioned box problem %s a fixed variable: %d iterations, SciPy takes %d",
              with_fixed ? "with" : "without", res.iterations, scipy_iterations);
        CHECK_CLOSE(res.f, f_min, 1e-8, 0, "ill-conditioned box problem: minimum");
        if (with_fixed) {
            CHECK(x[ILL_N] == 1.0, "fixed z moved to %.17g", x[ILL_N]);
            for (int i = 0; i < ILL_N; i++) CHECK_CLOSE(x[i], plain[i], 0, 1e-3, "same minimiser with z fixed");
        } else memcpy(plain, x, sizeof plain);
        printf("ill-conditioned box problem n=%d %s a fixed variable: %d iterations, %d evaluations "
               "(SciPy: %d without)\n",
               ILL_N, with_fixed ? "with" : "without", res.iterations, res.evaluations, scipy_iterations);
    }
}

int main(void)
{
    if (gram_context_create(&ctx) != GRAM_OK) return 1;
    test_rosenbrock_2d();
    test_rosenbrock_10();
    test_rosenbrock_bounded();
    test_diagonal_quadratic();
    test_dense_quadratic();
    test_larger_quadratic();
    test_fixed_variables();
    test_one_sided_and_projected_start();
    test_undefined_region();
    test_abort();
    test_arguments();
    test_stopping_reasons();
    test_stiff_bounded();
    test_fixed_variable_curvature();
    gram_context_destroy(ctx);
    return check_done();
}
