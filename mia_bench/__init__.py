"""mia_bench: membership inference attacks and training-time defenses, one Hydra config away."""

from pathlib import Path

__version__ = "0.1.0"


def conf_dir() -> Path:
    """The Hydra config folder: `mia_bench/conf/` inside an installed wheel (the build copies
    it there), else `conf/` at the repository root (a source checkout or an editable install)."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return packaged if (packaged / "config.yaml").is_file() else here.parent / "conf"
