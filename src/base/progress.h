/* Progress and cancellation of an OpenMP loop through the context's callback (gram.h's
 * gram_progress_fn), shared by the engine's driver and the feature maps. Every thread reports
 * its finished units; only thread 0 calls the callback, so a user's callback need not be
 * thread-safe; a non-zero return cancels, and every thread sees it through
 * gram__progress_cancelled before its next unit. Include only from files built with OpenMP. */
#ifndef GRAM_BASE_PROGRESS_H
#define GRAM_BASE_PROGRESS_H

#include "base.h"

#include <omp.h>

typedef struct gram__progress {
    int64_t done, total;
    int cancelled;
} gram__progress;

static inline void gram__progress_report(const gram_context *ctx, gram__progress *ps, int64_t units)
{
    int64_t done;
#pragma omp atomic capture
    done = ps->done += units;
    if (ctx && ctx->progress && omp_get_thread_num() == 0 && ctx->progress(ctx->progress_user, done, ps->total)) {
#pragma omp atomic write
        ps->cancelled = 1;
    }
}

static inline int gram__progress_cancelled(gram__progress *ps)
{
    int c;
#pragma omp atomic read
    c = ps->cancelled;
    return c;
}

#endif
