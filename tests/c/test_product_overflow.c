/* A product whose intermediate factor overflows while its value is a double: in
 * 1e308*rbf*8*rbf*gaussian(0.105)^0.5*exponential(10.004)^0.5 the factors 1e308·rbf·8·rbf pass
 * DBL_MAX before the narrow gaussian brings the value back (fuzz/corpus/spec/
 * found_product_intermediate_overflow: the sum was +inf where the log-sum said 689.6). The engine's
 * sum and matrix must give the value, on every microkernel table, and +inf only where the value
 * itself overflows. Reference: the closed form in long double (its range reaches 1e4932). */
#include "check.h"
#include "gram.h"

#include <float.h>
#include <math.h>

typedef long double ld;

static ld value(double y, double x)
{
    const ld r = fabsl((ld)y - (ld)x);
    /* 1e308 · 8 · exp(-r²/2)² · exp(-r²/(2·0.105²))^½ · exp(-r/10.004)^½ */
    return 8e308L * expl(-r * r) * expl(-r * r / (4.0L * 0.105L * 0.105L)) * expl(-r / (2.0L * 10.004L));
}

/* Recomputed as exp(log v), a value keeps the relative error of its log's absolute one: about
 * |ln v| ulps (ln v ≈ 700 here, 1.6e-13), the conditioning of exp, not a loss in the factors. */
static double rtol(ld v) { return 2.0 * DBL_EPSILON * (double)(fabsl(logl(v)) + 8.0L); }

int main(void)
{
    gram_context *ctx = NULL;
    CHECK_STATUS(gram_context_create(&ctx), GRAM_OK);
    gram_kernel *k = check_kernel(ctx, "1e308*rbf*8*rbf*gaussian(0.105)^0.5*exponential(10.004)^0.5");
    if (!k) return check_done();
    /* y = 0.6, 0.9: every value and sum a double; y = 0.05: the pair with x = 0 overflows (4.6e308) */
    const double X[3] = {0.0, 0.3, 0.45}, Y[3] = {0.6, 0.9, 0.05};
    double s[3], K[9];
    gram_array xa = gram_array_f64(X, 3, 1), ya = gram_array_f64(Y, 3, 1);
    gram_array sa = gram_array_f64(s, 3, 1), ka = gram_array_f64(K, 3, 3);
    static const char *const archs[] = {"ref", "avx2", "avx512"};
    for (int a = 0; a < 3; a++) {
        if (gram_context_set_arch(ctx, archs[a]) != GRAM_OK) continue;
        CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &sa), GRAM_OK);
        CHECK_STATUS(gram_kernel_matrix(ctx, k, &ya, &xa, &ka), GRAM_OK);
        for (int i = 0; i < 3; i++) {
            ld want = 0;
            for (int j = 0; j < 3; j++) {
                const ld v = value(Y[i], X[j]);
                want += v;
                if (v > DBL_MAX) CHECK(isinf(K[i * 3 + j]) && K[i * 3 + j] > 0, "%s: K[%d][%d] = %g, want +inf", archs[a], i, j, K[i * 3 + j]);
                else CHECK_CLOSE(K[i * 3 + j], (double)v, rtol(v), 0.0, "K entry");
            }
            if (want > DBL_MAX) CHECK(isinf(s[i]) && s[i] > 0, "%s: sum %d = %g, want +inf", archs[a], i, s[i]);
            else CHECK_CLOSE(s[i], (double)want, rtol(want), 0.0, "sum");
        }
    }
    gram_kernel_destroy(k);
    gram_context_destroy(ctx);
    return check_done();
}
