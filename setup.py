"""Build hook (the metadata is in pyproject.toml): the Hydra configs in conf/, kept at the
repository root for readers, are copied into the wheel as mia_bench/conf/, where an installed
package looks for them (mia_bench.conf_dir)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONF = Path(__file__).resolve().parent / "conf"


class BuildPyWithConf(build_py):
    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "mia_bench" / "conf"
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(CONF, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithConf})
