"""Which files an install of the kit holds; the rest of the project's metadata is in pyproject.toml.

The text and the tokenizer files stay in data/ for the kit's users; a regular install
(``pip install .``, not editable) ships them as the package ``reference.kitdata``, which
reference/data.py reads with importlib.resources. The student release (``python -m grader
release``) uses this same file: it has no solutions/, which find then does not find.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=find_namespace_packages(include=["reference*", "grader*", "solutions*", "exercises*"])
    + ["reference.kitdata"],
    package_dir={"reference.kitdata": "data"},
    package_data={
        "grader": ["RELEASE", "checks/*/checks.toml", "expected/*.pt", "templates/*"],
        "reference.kitdata": ["SHA256SUMS", "the-verdict.txt", "gpt2/*"],
    },
)
