/* What every fuzz target shares: the assertion that turns a broken invariant into a crash that
 * libFuzzer (or replay.c under ctest) reports with the input that caused it. */
#ifndef GRAM_FUZZ_COMMON_H
#define GRAM_FUZZ_COMMON_H

#include <stdio.h>

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz assertion failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);        \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* Known faults whose fixes belong to other files are tolerated by the targets (each tolerance names
 * its input in fuzz/pending/<target>/) so that fuzzing goes on past them; -DFUZZ_STRICT turns every
 * tolerance off, to check a pending input against a fix. */
#ifdef FUZZ_STRICT
#define FUZZ_TOLERATE 0
#else
#define FUZZ_TOLERATE 1
#endif

#endif
