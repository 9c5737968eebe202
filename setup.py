"""The compiled part of exoflow (everything else is configured in pyproject.toml).

``exoflow._native`` is optional: without a C compiler the install still succeeds and
the walker uses os.scandir instead (``exoflow info`` says which one is in use).

On x86 the module also compiles xxHash's xxh_x86dispatch.c, which picks XXH3's SSE2, AVX2 or
AVX-512 code at run time: hashing with AVX2 takes about half the CPU of the SSE2 baseline
that a portable build gets otherwise. It is built with baseline flags (no -march), as the
xxhash package builds it, so the module runs on any x86-64 CPU.
"""
import re
import sysconfig

from setuptools import Extension, setup

X86 = re.search(r"(?:^|[^a-z0-9])(?:x86_64|amd64|i[3-6]86|x86)(?:[^a-z0-9]|$)", sysconfig.get_platform().lower())
sources, macros = ["exoflow/_native.c"], []
if X86 or sysconfig.get_platform() == "win32":
    sources.append("third_party/xxhash/xxh_x86dispatch.c")
    macros.append(("EXOFLOW_XXH_X86_DISPATCH", "1"))

setup(ext_modules=[Extension("exoflow._native", sources, optional=True, define_macros=macros,
                             include_dirs=["third_party/xxhash"],
                             depends=["third_party/xxhash/xxhash.h", "third_party/xxhash/xxh_x86dispatch.h"],
                             extra_compile_args=["-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"])])
