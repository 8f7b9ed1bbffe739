#include "base.h"

/* Run-time CPU feature detection. The SIMD microkernels are compiled only where the compiler can
 * target x86-64 (GRAM_HAVE_X86_KERNELS); elsewhere only the reference kernels exist. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

static unsigned long long xgetbv0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int features(void)
{
    static int cached = -1;
    if (cached >= 0) return cached;
    int f = 0;
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
        if (osxsave && avx && fma) {
            unsigned long long xcr0 = xgetbv0();
            int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
            if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
                int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
                if (ymm && avx2) f |= 1;
                if (zmm && avx512f && avx512dq && (f & 1)) f |= 2;
            }
        }
    }
    cached = f;
    return f;
}
#ifdef GRAM_HAVE_X86_KERNELS
bool gram__cpu_has_avx2(void) { return features() & 1; }
bool gram__cpu_has_avx512(void) { return (features() & 2) != 0; }
#else
bool gram__cpu_has_avx2(void) { (void)features; return false; }
bool gram__cpu_has_avx512(void) { return false; }
#endif
#else
bool gram__cpu_has_avx2(void) { return false; }
bool gram__cpu_has_avx512(void) { return false; }
#endif
