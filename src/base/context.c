#include "base.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

gram_status gram_context_create(gram_context **out)
{
    if (!out) return GRAM_EINVAL;
    gram_context *c = calloc(1, sizeof *c);
    *out = c;
    if (!c) return GRAM_ENOMEM;
    c->threads = 0;
    c->arch = GRAM_ARCH_AUTO;
    return GRAM_OK;
}

void gram_context_destroy(gram_context *ctx) { free(ctx); }

const char *gram_context_message(const gram_context *ctx) { return ctx ? ctx->message : ""; }

gram_status gram_context_set_threads(gram_context *ctx, int threads)
{
    if (!ctx) return GRAM_EINVAL;
    gram__clear(ctx);
    if (threads < 0 || threads > 4096)
        return gram__fail(ctx, GRAM_EINVAL, "threads must be in [0, 4096], got %d", threads);
    ctx->threads = threads;
    return GRAM_OK;
}

int gram_context_threads(const gram_context *ctx) { return ctx ? ctx->threads : 0; }

int gram__threads(const gram_context *ctx)
{
    int n = ctx && ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
    return n < 1 ? 1 : n;
}

/* ---- teams the system will give ----------------------------------------------------------------
 *
 * libgomp keeps, per calling thread, a pool of the workers of its last parallel region: a region of
 * n threads leaves n - 1 workers docked, a larger one creates the difference, a smaller one lets the
 * extra workers exit. When pthread_create fails (EAGAIN under a pids cgroup, RLIMIT_NPROC or
 * TasksMax) libgomp prints and calls exit(1), which a library must never let happen. So each calling
 * thread remembers the size of its last team, and a larger team is first tried here: the missing
 * workers are created as plain threads that wait until all exist, then released and joined. The
 * team is cut to what succeeded. A race with other processes taking the last threads between the
 * probe and libgomp's own creation remains possible; the probe removes the deterministic failure. */

typedef struct probe_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
} probe_gate;

static void *probe_wait(void *arg)
{
    probe_gate *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* How many of `extra` threads can exist at once besides those alive now (0..extra). */
static int probe_threads(int extra)
{
    pthread_t *tid = malloc((size_t)extra * sizeof *tid);
    if (!tid) return 0;
    probe_gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    int made = 0;
    while (made < extra && pthread_create(&tid[made], NULL, probe_wait, &g) == 0) made++;
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < made; i++) pthread_join(tid[i], NULL);
    free(tid);
    return made;
}

static _Thread_local int last_team = 1; /* this thread's libgomp pool holds last_team - 1 workers */

int gram__team_size(int want)
{
    if (want < 1) want = 1;
    if (omp_in_parallel()) return want; /* a nested team: not this thread's pool */
    if (want > last_team) {
        int got = probe_threads(want - last_team);
        if (got < want - last_team) want = last_team + got;
    }
    last_team = want;
    return want;
}

gram_status gram_context_set_progress(gram_context *ctx, gram_progress_fn fn, void *user)
{
    if (!ctx) return GRAM_EINVAL;
    gram__clear(ctx);
    ctx->progress = fn;
    ctx->progress_user = user;
    return GRAM_OK;
}

static gram_status parse_arch(gram_context *ctx, const char *name, gram_arch *out, const char *what)
{
    if (!strcmp(name, "auto") || !strcmp(name, "")) *out = GRAM_ARCH_AUTO;
    else if (!strcmp(name, "ref")) *out = GRAM_ARCH_REF;
    else if (!strcmp(name, "avx2")) *out = GRAM_ARCH_AVX2;
    else if (!strcmp(name, "avx512")) *out = GRAM_ARCH_AVX512;
    else
        return gram__fail(ctx, GRAM_EINVAL, "%s: unknown architecture '%s' (expected auto, ref, avx2 or avx512)",
                          what, name);
    if (*out == GRAM_ARCH_AVX2 && !gram__cpu_has_avx2())
        return gram__fail(ctx, GRAM_EUNSUPPORTED, "%s: this CPU lacks AVX2/FMA", what);
    if (*out == GRAM_ARCH_AVX512 && !gram__cpu_has_avx512())
        return gram__fail(ctx, GRAM_EUNSUPPORTED, "%s: this CPU lacks AVX-512F/DQ", what);
    return GRAM_OK;
}

gram_status gram_context_set_arch(gram_context *ctx, const char *arch)
{
    if (!ctx || !arch) return gram__fail(ctx, GRAM_EINVAL, "arch must not be NULL");
    gram__clear(ctx);
    gram_arch a = GRAM_ARCH_AUTO;
    gram_status s = parse_arch(ctx, arch, &a, "arch");
    if (s) return s;
    ctx->arch = a;
    return GRAM_OK;
}

const char *gram__arch_name(gram_arch a)
{
    switch (a) {
    case GRAM_ARCH_REF: return "ref";
    case GRAM_ARCH_AVX2: return "avx2";
    case GRAM_ARCH_AVX512: return "avx512";
    default: return "auto";
    }
}

gram_status gram__resolve_arch(gram_context *ctx, gram_arch *out)
{
    gram_arch a = ctx ? ctx->arch : GRAM_ARCH_AUTO;
    if (a == GRAM_ARCH_AUTO) {
        const char *env = getenv("GRAM_ARCH");
        if (env && *env) {
            gram_status s = parse_arch(ctx, env, &a, "GRAM_ARCH");
            if (s) return s;
        }
    }
    if (a == GRAM_ARCH_AUTO)
        a = gram__cpu_has_avx512() ? GRAM_ARCH_AVX512 : gram__cpu_has_avx2() ? GRAM_ARCH_AVX2 : GRAM_ARCH_REF;
    *out = a;
    return GRAM_OK;
}

const char *gram_context_arch(const gram_context *ctx)
{
    gram_arch a = GRAM_ARCH_AUTO;
    if (gram__resolve_arch((gram_context *)ctx, &a)) return "ref";
    return gram__arch_name(a);
}
