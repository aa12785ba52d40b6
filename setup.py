"""The awesomme package: our routers, services and command, run inside MONAI Label's server.

Versions are pinned in requirements/constraints.txt; install with
``pip install -c requirements/constraints.txt -e .[dev]`` (the Makefile does it in the right order).
"""

from setuptools import find_packages, setup

setup(
    name="awesomme",
    version="0.1.0",
    description="AWESOMME on MONAI Label: a secure web platform for medical image analysis",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    package_dir={"": "extensions"},
    packages=find_packages("extensions"),
    package_data={
        "awesomme": ["migrations/*.mako", "migrations/versions/*.py", "api/templates/*.html", "analysis/presets/*.yaml"]
    },
    install_requires=[
        "monailabel==0.8.5",
        "monai",
        "torch",
        "torchvision",
        "pydicom<3",
        # Hospital PACS peers (C-ECHO, C-FIND, C-GET); 3.x needs pydicom 3.
        "pynetdicom>=2.1,<3",
        "highdicom",
        # Compressed pixel data as archives hold it, decoded by pydicom's pylibjpeg handler: JPEG 2000 (openjpeg),
        # JPEG baseline/extended/lossless and JPEG-LS (libjpeg), RLE (rle).
        "pylibjpeg",
        "pylibjpeg-openjpeg",
        "pylibjpeg-libjpeg",
        "pylibjpeg-rle",
        "dicomweb-client",
        # DICOM PS3.15 Table E.1-1 (2024b) as data for our de-identification (dicom/deidentify.py); BSD-3-Clause.
        "dicom-anonymizer",
        "nibabel",
        # ISA-L gzip: the .nii.gz answer of every inference, written 4-5x faster than with zlib
        "isal",
        "pynrrd",
        "numpy<2",
        "scipy",
        "SQLAlchemy>=2",
        "alembic",
        "pydantic-settings",
        "httpx",
        "requests",
        "uvicorn",
        "fastapi",
        # Swagger UI's files, so /docs loads nothing from another host.
        "swagger-ui-py",
        # MONAI Label's own DICOMweb datastore (the benchmarks' stock baseline) wants its itkimage2segimage binary.
        "dcmqi",
        "psycopg[binary]",
        "authlib",
        "argon2-cffi",
        # Analysis: radiomics (never the `pyradiomics` package, see docs), classifiers and their safe storage, agreement.
        "pyradiomics-bhklab",
        "SimpleITK",
        "scikit-learn",
        "skrebate",
        "skops",
        "krippendorff",
        # Cohort batches: a LocalCluster of worker processes the server starts, or a site's cluster over tls://.
        "dask",
        "distributed",
        # The CLI's progress bars (`awesomme batch watch`).
        "tqdm",
    ],
    # schemathesis fuzzes /api from its OpenAPI schema (tests/fuzz, `make fuzz`).
    # playwright drives Debian's chromium in tests/integration/test_viewer_browser.py (it never downloads a browser).
    # dcm2niix (its binary in a wheel) reads the series a NIfTI import wrote back to NIfTI in tests/integration.
    extras_require={
        "dev": ["pytest", "pytest-timeout", "ruff", "mypy", "types-PyYAML", "playwright", "schemathesis", "dcm2niix"]
    },
    entry_points={"console_scripts": ["awesomme = awesomme.cli:main"]},
)
