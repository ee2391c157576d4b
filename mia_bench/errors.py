"""The one exception type for bad user input: the message names the setting to change."""


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
