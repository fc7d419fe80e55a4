"""Build script. The package metadata lives in pyproject.toml; compiled extensions
(the Cython backend) are declared here."""

from setuptools import setup

setup()
