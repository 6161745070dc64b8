"""Build the Cython kernels.

Compiler directives are set once here for every module (scikit-learn's rule). Set
PAGECORE_DEBUG=1 at build time to turn bounds, wraparound and initialisation checks back on.
"""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("PAGECORE_DEBUG", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

OMP = ["-fopenmp"]
#: The Cython kernels, pagecore/kernels/<name>.pyx, each with its .pxd contract.
MODULES = ["page", "buddy", "hotplug", "compaction"]
# C headers a module includes (`cdef extern from "...h"`): a change rebuilds the module
HEADERS = {"buddy": ["pagecore/kernels/pcg64.h"],
           "hotplug": ["pagecore/kernels/pageinit.h", "pagecore/kernels/scanblock.h"],
           "compaction": ["pagecore/kernels/scanblock.h"]}

extensions = [
    Extension(
        f"pagecore.kernels.{name}",
        [f"pagecore/kernels/{name}.pyx"],
        depends=HEADERS.get(name, []),
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] + OMP + (["-O0", "-g"] if DEBUG else []),
        extra_link_args=OMP,
    )
    for name in MODULES
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
