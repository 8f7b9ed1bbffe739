/* Threads the system will not give. libgomp prints "Thread creation failed" and calls exit(1) when
 * pthread_create fails, which would end the CLI or a Python interpreter although the library
 * promises never to exit. This test defines pthread_create itself (the executable's definition
 * interposes libgomp's and the library's calls; the real one is reached through dlsym(RTLD_NEXT)),
 * so that at most `limit` extra threads may be alive at once, as under a pids cgroup or TasksMax.
 * Before gram__team_size existed, the first call below ended this process with exit status 1. */
#define _GNU_SOURCE
#include "base/base.h"
#include "check.h"
#include "gram.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- a pthread_create with a limit on live threads ------------------------------------------ */

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static pthread_mutex_t lim_mu = PTHREAD_MUTEX_INITIALIZER;
static int live = 0;    /* threads started through this wrapper and not yet returned */
static int limit = -1;  /* -1: no limit */
static long refused = 0;

typedef struct tramp {
    void *(*fn)(void *);
    void *arg;
} tramp;

static void *trampoline(void *a)
{
    tramp t = *(tramp *)a;
    free(a);
    void *r = t.fn(t.arg);
    pthread_mutex_lock(&lim_mu);
    live--;
    pthread_mutex_unlock(&lim_mu);
    return r;
}

int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    static create_fn real;
    if (!real) real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    if (!real) return ENOSYS;
    pthread_mutex_lock(&lim_mu);
    if (limit >= 0 && live >= limit) {
        refused++;
        pthread_mutex_unlock(&lim_mu);
        return EAGAIN;
    }
    live++;
    pthread_mutex_unlock(&lim_mu);
    tramp *t = malloc(sizeof *t);
    int rc = t ? 0 : ENOMEM;
    if (t) {
        t->fn = fn, t->arg = arg;
        rc = real(th, attr, trampoline, t);
    }
    if (rc) {
        free(t);
        pthread_mutex_lock(&lim_mu);
        live--;
        pthread_mutex_unlock(&lim_mu);
    }
    return rc;
}

/* At most n more threads than are alive now (OpenBLAS's and libgomp's own workers included); -1: no
 * limit. */
static void set_limit(int n)
{
    pthread_mutex_lock(&lim_mu);
    limit = n < 0 ? -1 : live + n;
    refused = 0;
    pthread_mutex_unlock(&lim_mu);
}

static long n_refused(void)
{
    pthread_mutex_lock(&lim_mu);
    long r = refused;
    pthread_mutex_unlock(&lim_mu);
    return r;
}

/* ---- the tests -------------------------------------------------------------------------------- */

enum { N = 3000, M = 2000, D = 3 };

static double X[N * D], Y[M * D];

/* A Gaussian sum large enough for 8 threads to get work, at `threads` threads. */
static gram_status sum_at(int threads, double *out)
{
    gram_context *ctx = NULL;
    gram_kernel *k = NULL;
    gram_status s = gram_context_create(&ctx);
    if (!s) s = gram_context_set_threads(ctx, threads);
    if (!s) s = gram_kernel_parse(ctx, "gaussian(lengthscale=0.7)", &k);
    gram_array x = gram_array_f64(X, N, D), y = gram_array_f64(Y, M, D), o = gram_array_f64(out, M, 1);
    if (!s) s = gram_kernel_sum(ctx, k, &y, &x, NULL, &o);
    gram_kernel_destroy(k);
    gram_context_destroy(ctx);
    return s;
}

static void test_sum_under_limit(void)
{
    static double want[M], got[M];
    CHECK_STATUS(sum_at(1, want), GRAM_OK);

    /* Two extra threads at most: an 8-thread call runs on 3 and gives the same bits. */
    set_limit(2);
    CHECK_STATUS(sum_at(8, got), GRAM_OK);
    CHECK(n_refused() > 0, "the limit was never reached: the test did not test anything");
    CHECK(memcmp(want, got, sizeof want) == 0, "8 threads under a limit of 2 extra differ from 1 thread");

    /* No thread at all: the call runs on the calling thread alone. */
    set_limit(0);
    memset(got, 0, sizeof got);
    CHECK_STATUS(sum_at(8, got), GRAM_OK);
    CHECK(memcmp(want, got, sizeof want) == 0, "8 threads under a limit of 0 extra differ from 1 thread");

    set_limit(-1);
    memset(got, 0, sizeof got);
    CHECK_STATUS(sum_at(8, got), GRAM_OK);
    CHECK(memcmp(want, got, sizeof want) == 0, "8 threads without a limit differ from 1 thread");
}

/* The team sizes themselves: cut to what the system gives, grown again when it gives more. */
static void test_team_size(void)
{
    set_limit(-1);
    CHECK(gram__team_size(1) == 1, "a team of 1 needs no thread");
    set_limit(3);
    int got = gram__team_size(8);
    CHECK(got == 4, "8 threads under a limit of 3 extra: got a team of %d, want 4", got);
    set_limit(-1);
    got = gram__team_size(8);
    CHECK(got == 8, "8 threads without a limit: got a team of %d, want 8", got);
    CHECK(gram__team_size(0) == 1 && gram__team_size(-5) == 1, "a team has at least one thread");
}

/* The GP likelihood gradient has its own parallel region (src/regress/gp.c). */
static void test_gp_under_limit(void)
{
    enum { NG = 300 };
    static double xg[NG], yg[NG];
    for (int i = 0; i < NG; i++) xg[i] = i * 0.05, yg[i] = sin(xg[i]);
    double lml[2], grad[2][3];
    for (int pass = 0; pass < 2; pass++) {
        set_limit(pass == 0 ? -1 : 1);
        gram_context *ctx = NULL;
        gram_kernel *k = NULL;
        gram_gp *gp = NULL;
        gram_status s = gram_context_create(&ctx);
        if (!s) s = gram_context_set_threads(ctx, pass == 0 ? 1 : 8);
        if (!s) s = gram_kernel_parse(ctx, "1.5*gaussian(lengthscale=0.8) + white(0.01)", &k);
        gram_gp_options opt;
        gram_gp_options_init(&opt);
        gram_array x = gram_array_f64(xg, NG, 1), y = gram_array_f64(yg, NG, 1);
        if (!s) s = gram_gp_fit(ctx, k, &opt, &x, &y, &gp);
        CHECK(s == GRAM_OK, "gp fit at pass %d: %s", pass, gram_context_message(ctx));
        if (!s) {
            CHECK(gram_kernel_n_hyper(k) == 3, "the kernel has 3 hyperparameters");
            double theta[3];
            gram_kernel_get_hyper(k, theta);
            s = gram_gp_log_marginal_likelihood(ctx, gp, theta, &lml[pass], grad[pass]);
            CHECK(s == GRAM_OK, "lml at pass %d: %s", pass, gram_context_message(ctx));
        }
        gram_gp_destroy(gp);
        gram_kernel_destroy(k);
        gram_context_destroy(ctx);
    }
    set_limit(-1);
    CHECK(lml[0] == lml[1] && memcmp(grad[0], grad[1], sizeof grad[0]) == 0,
          "GP likelihood and gradient under a thread limit differ from one thread");
}

int main(void)
{
    uint64_t s = 12345;
    for (int i = 0; i < N * D; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        X[i] = (double)(s >> 11) * 0x1p-53 * 4 - 2;
    }
    for (int i = 0; i < M * D; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        Y[i] = (double)(s >> 11) * 0x1p-53 * 4 - 2;
    }
    test_team_size();
    test_sum_under_limit();
    test_gp_under_limit();
    return check_done();
}
