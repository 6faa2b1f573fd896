"""Errors a user can cause. The CLI turns these into one line on stderr and a non-zero exit."""


class ZooError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class DataNotFoundError(ZooError):
    """The data set is in none of the places we look."""


class WeightsError(ZooError):
    """A weights file is missing, corrupt, foreign to the model, or fails its hash check."""
