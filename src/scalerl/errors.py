"""User-facing errors: the CLI prints their message on one line and exits with status 2."""


class ScalerlError(Exception):
    """An error caused by user input (bad env id, invalid config, corrupt checkpoint, ...).

    The message must name the problem and the fix in one line; the CLI prints it without a
    traceback.
    """


class ConfigError(ScalerlError):
    """An invalid configuration value, detected before any work starts."""


class EnvError(ScalerlError):
    """An unknown environment id, a missing suite, or non-finite values from an environment."""


class CheckpointError(ScalerlError):
    """A missing, corrupt or incompatible checkpoint."""


class TrainingError(ScalerlError):
    """A run that had to stop (e.g. a NaN loss); a checkpoint was saved before raising."""


class DatasetError(ScalerlError):
    """A dataset file that is missing, malformed, or does not fit the environment."""
