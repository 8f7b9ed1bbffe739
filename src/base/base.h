/* base: status and messages, the context, memory, size arithmetic, CPU features.
 * Internal to libgram; every other layer includes this. */
#ifndef GRAM_BASE_H
#define GRAM_BASE_H

#include "gram.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRAM_MSG_SIZE 512

typedef enum gram_arch { GRAM_ARCH_AUTO = -1, GRAM_ARCH_REF = 0, GRAM_ARCH_AVX2 = 1, GRAM_ARCH_AVX512 = 2 } gram_arch;

struct gram_context {
    char message[GRAM_MSG_SIZE];
    int threads;
    gram_progress_fn progress;
    void *progress_user;
    gram_arch arch; /* GRAM_ARCH_AUTO: resolved at call time from GRAM_ARCH and cpuid */
};

/* The single place errors are raised: records the message on ctx (if any) and returns status. */
gram_status gram__fail(gram_context *ctx, gram_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The number of OpenMP threads a parallel region run for ctx may use (>= 1): the context's setting,
 * else OpenMP's default, limited to what the system will actually give (see context.c). Every
 * `#pragma omp parallel num_threads(...)` in the library takes its count from here. */
int gram__threads(const gram_context *ctx);

/* The size of the OpenMP team to start now for `want` threads (>= 1): `want`, or fewer when the
 * system will not create that many threads (a process or cgroup limit). libgomp ends the process
 * with "Thread creation failed" when pthread_create fails, so before a parallel region needs more
 * threads than the calling thread's libgomp pool holds, the missing ones are created here first (and
 * joined at once) to see how many the system gives. Call it right before each `#pragma omp
 * parallel num_threads(n)` with the n about to be used, and use what it returns. */
int gram__team_size(int want);

/* Clears ctx's message at the start of a public call. */
void gram__clear(gram_context *ctx);

/* Memory: 64-byte aligned, NULL on failure or on a zero size (callers handle 0 themselves).
 * A block that gram__memory_fits refuses is NULL at once: Linux would grant it, and the OOM
 * killer end the process when it is filled. */
void *gram__alloc(size_t bytes);
void *gram__calloc(size_t count, size_t size);
void gram__free(void *p);
/* Bytes the system can provide now: MemAvailable + SwapFree (/proc/meminfo), lowered to the least
 * room left under the memory limits of the process's cgroup and its ancestors (v2 memory.max, or v1
 * memory.limit_in_bytes, less the usage that is not page cache); -1 when unknown (no /proc). */
long long gram__memory_available(void);
/* The same with /proc and /sys read under the directory `root` ("" for the system's own): the
 * tests give it fake trees. */
long long gram__memory_available_in(const char *root);
/* Whether `bytes` can be had: always below GRAM_BIG_ALLOC (1 GiB), else when they do not exceed
 * gram__memory_available() (or it is unknown). A caller about to make several large blocks at
 * once asks for their total first: each alone may fit where all together do not. */
#define GRAM_BIG_ALLOC ((size_t)1 << 30)
bool gram__memory_fits(size_t bytes);

/* Overflow-checked size arithmetic: return false on overflow (or negative operands). */
bool gram__mul_i64(int64_t a, int64_t b, int64_t *out);
bool gram__add_i64(int64_t a, int64_t b, int64_t *out);
bool gram__bytes(int64_t count, size_t elem, size_t *out);

/* CPU features and the architecture an engine call uses. */
bool gram__cpu_has_avx2(void);
bool gram__cpu_has_avx512(void);
/* The architecture for a call on ctx: ctx's forced one, else GRAM_ARCH, else the best available. */
gram_status gram__resolve_arch(gram_context *ctx, gram_arch *out);
const char *gram__arch_name(gram_arch a);

#endif
