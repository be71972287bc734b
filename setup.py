# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Build hook for the one optional C extension (metadata is in pyproject).

``knet.evaluation._fastpng`` speeds up PNG decoding for panoptic evaluation.
It is ``optional``: without a C compiler or zlib headers the build only
warns and ``knet.evaluation`` uses libspng / OpenCV instead (same numbers).
"""
from setuptools import Extension, setup

setup(ext_modules=[
    Extension(
        'knet.evaluation._fastpng',
        sources=['knet/evaluation/_fastpng.c'],
        libraries=['z'],
        extra_compile_args=['-O3'],
        optional=True)
])
