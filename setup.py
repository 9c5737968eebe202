"""The compiled part of exoflow (everything else is configured in pyproject.toml).

``exoflow._native`` is optional: without a C compiler the install still succeeds and
the walker uses os.scandir instead (``exoflow info`` says which one is in use).

On x86 the module also holds xxHash's xxh_x86dispatch.c (exoflow/_xxh_dispatch.c), which picks
XXH3's SSE2, AVX2 or AVX-512 code at run time: hashing with AVX2 takes about half the CPU of the
SSE2 baseline a portable build gets otherwise. Everything is built with baseline flags (no
-march), as the xxhash package builds it, so the module runs on any CPU of its architecture.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("exoflow._native", ["exoflow/_native.c", "exoflow/_xxh_dispatch.c"], optional=True,
                             include_dirs=["third_party/xxhash"],
                             depends=["third_party/xxhash/xxhash.h", "third_party/xxhash/xxh_x86dispatch.h",
                                      "third_party/xxhash/xxh_x86dispatch.c"],
                             extra_compile_args=["-O2", "-fvisibility=hidden", "-Wall", "-Wextra",
                                                 "-Wno-unused-parameter"])])
