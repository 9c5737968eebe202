"""The compiled part of exoflow (everything else is configured in pyproject.toml).

``exoflow._native`` is optional: without a C compiler the install still succeeds and
the walker uses os.scandir instead (``exoflow info`` says which one is in use).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("exoflow._native", ["exoflow/_native.c"], optional=True,
                             include_dirs=["third_party/xxhash"], depends=["third_party/xxhash/xxhash.h"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"])])
