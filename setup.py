"""Install script for oneshot_nas (src layout).

The pins follow ../shared/SPEC.md section 2: mxnet 1.9.1 imports only with numpy < 1.24, and
gluoncv 0.10.5.post0 imports only next to scipy < 1.12, matplotlib < 3.9, pandas < 2.1 and
opencv-python < 4.9. mxnet itself is an extra (``cpu`` or ``cu112``) because the CPU and the CUDA
wheels provide the same module and must never both be installed.
"""
from setuptools import find_packages, setup

PINNED = [
    "numpy==1.23.5",
    "gluoncv==0.10.5.post0",
    "scipy==1.11.4",
    "matplotlib==3.8.4",
    "pandas==2.0.3",
    "opencv-python==4.8.1.78",
    "scikit-learn==1.3.2",
    "tqdm==4.66.1",
]

setup(
    name="oneshot_nas",
    version="0.1.0",
    description="Single Path One-Shot NAS (block + channel selection) in MXNet Gluon",
    package_dir={"": "src"},
    packages=find_packages("src"),
    python_requires=">=3.8",
    install_requires=PINNED,
    extras_require={
        "cpu": ["mxnet==1.9.1"],
        "cu112": ["mxnet-cu112==1.9.1"],
        # horovod must be built against an installed mxnet without build isolation, see
        # the Makefile target `dist` (HOROVOD_WITH_MXNET=1 ... pip install --no-build-isolation).
        "dist": ["horovod==0.28.1"],
        "dev": ["pytest==7.4.3", "pytest-timeout==2.2.0"],
    },
)
