/* xxHash's run-time dispatcher (third_party/xxhash/xxh_x86dispatch.c) where the compiler targets
 * x86, so that XXH3 runs SSE2, AVX2 or AVX-512 code as the CPU allows; nothing on other targets,
 * whose XXH3 (NEON, VSX, scalar) _native.c inlines. Decided here rather than in setup.py, so that
 * a cross-compile or each slice of a universal build gets what its own target needs. */
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include "xxh_x86dispatch.c"
#else
typedef int exoflow_no_x86_dispatch;     /* ISO C wants a translation unit to declare something */
#endif
