"""The one exception type for bad user input: the message names the setting to change."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A setting is missing, of the wrong type, or out of range.

    Raised before any training starts; the message says which key to change and how.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")

    def __reduce__(self):
        # Launcher workers (joblib's loky processes) send exceptions back pickled; the default
        # reduction would call ConfigError(str) and break the whole process pool.
        return type(self), (self.key, self.message)


class DivergenceError(RuntimeError):
    """Training produced a NaN or inf loss; the message names the model, defense and epoch."""


def import_target(key: str, target: object) -> Any:
    """The object a `_target_` setting names (module.attr), or a ConfigError naming `key`
    with the import failure; user modules come from the working directory or $PYTHONPATH."""
    from hydra.utils import get_object

    try:
        return get_object(str(target))
    except Exception as err:  # noqa: BLE001 - any import failure is a bad setting
        cause = err.__cause__ or err
        raise ConfigError(
            key,
            f"cannot import {target!r} ({type(cause).__name__}: {cause}); the module must be "
            "importable from the working directory or $PYTHONPATH",
        ) from err
