/* The AVX-512 microkernel table ("avx512"). Its entries are the kernels of ukr_simd.inc over the
 * primitives of simd_avx512.h, defined for float64 in ukr_avx512_f64.c and for float32 in
 * ukr_avx512_f32.c: separate files, so that a parallel build compiles them at the same time. */
#if defined(GRAM_HAVE_X86_KERNELS)
#include "simd_avx512.h"
#include "ukr_simd.h"

SIMD_DEFINE_TABLE(gram__ukr_avx512);

#else
/* Not an x86-64 GCC/Clang build: no table here, and the engine never asks for one because
 * GRAM_HAVE_X86_KERNELS is undefined. */
typedef int gram__ukr_avx512_unavailable;
#endif
