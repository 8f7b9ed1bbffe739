/* Uses only the installed gram.h and libgram: a 3-point kernel sum checked against the formula.
 * Exit status 0 when the library works. */
#include <gram.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    gram_context *ctx = NULL;
    gram_kernel *k = NULL;
    int rc = 1;
    if (gram_context_create(&ctx) != GRAM_OK) {
        fprintf(stderr, "consumer: gram_context_create failed\n");
        return 1;
    }
    gram_status s = gram_kernel_parse(ctx, "gaussian(lengthscale=2)", &k);
    if (s != GRAM_OK) {
        fprintf(stderr, "consumer: %s: %s\n", gram_strerror(s), gram_context_message(ctx));
        goto done;
    }
    const double x[3] = {0.0, 1.0, 3.0}, y[2] = {0.5, -1.0};
    double out[2] = {0, 0};
    gram_array X = gram_array_f64(x, 3, 1), Y = gram_array_f64(y, 2, 1), O = gram_array_f64(out, 2, 1);
    s = gram_kernel_sum(ctx, k, &Y, &X, NULL, &O);
    if (s != GRAM_OK) {
        fprintf(stderr, "consumer: %s: %s\n", gram_strerror(s), gram_context_message(ctx));
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        double want = 0;
        for (int j = 0; j < 3; j++) want += exp(-0.5 * (y[i] - x[j]) * (y[i] - x[j]) / 4.0);
        if (fabs(out[i] - want) > 1e-12 * want) {
            fprintf(stderr, "consumer: out[%d] = %.17g, want %.17g\n", i, out[i], want);
            goto done;
        }
    }
    /* Kernel ridge regression (dense algebra through OpenBLAS): for the 3 points with λ = 0.5 the
     * prediction at a training point satisfies K c = y - λ c, checked as a residual. */
    {
        const double yt[3] = {1.0, -2.0, 0.5}, lam = 0.5;
        double c[3], K[9];
        gram_array Yt = gram_array_f64(yt, 3, 1), C = gram_array_f64(c, 3, 1), Ka = gram_array_f64(K, 3, 3);
        gram_krr *m = NULL;
        s = gram_krr_fit(ctx, k, &X, &Yt, NULL, 1, &lam, &m);
        if (s == GRAM_OK) s = gram_krr_get_dual_coef(m, &C);
        if (s == GRAM_OK) s = gram_kernel_matrix(ctx, k, NULL, &X, &Ka);
        gram_krr_destroy(m);
        for (int i = 0; i < 3 && s == GRAM_OK; i++) {
            double r = lam * c[i] - yt[i];
            for (int j = 0; j < 3; j++) r += K[i * 3 + j] * c[j];
            if (fabs(r) > 1e-12) {
                fprintf(stderr, "consumer: kernel ridge residual %g\n", r);
                goto done;
            }
        }
        if (s != GRAM_OK) {
            fprintf(stderr, "consumer: kernel ridge: %s: %s\n", gram_strerror(s), gram_context_message(ctx));
            goto done;
        }
    }
    /* A failing call must report a status and a message, not print or exit. */
    gram_kernel *bad = NULL;
    s = gram_kernel_parse(ctx, "gaussian(lengthscale=-1)", &bad);
    if (s == GRAM_OK || bad != NULL || strlen(gram_context_message(ctx)) == 0) {
        fprintf(stderr, "consumer: a negative lengthscale was not refused with a message\n");
        gram_kernel_destroy(bad);
        goto done;
    }
    printf("consumer: gram %s (header %d.%d.%d) ok, arch %s\n", gram_version(), GRAM_VERSION_MAJOR,
           GRAM_VERSION_MINOR, GRAM_VERSION_PATCH, gram_context_arch(ctx));
    rc = 0;
done:
    gram_kernel_destroy(k);
    gram_context_destroy(ctx);
    return rc;
}
