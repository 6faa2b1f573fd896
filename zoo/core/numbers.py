"""Numbers as records and JSON carry them: rounded to what they mean, not to float32 noise.

An accuracy is a count over at most 10,000 images, so six decimals hold it exactly (0.8947, not
0.8946999907493591); a duration means something to the millisecond, a rate to a tenth.
"""

from __future__ import annotations

from collections.abc import Mapping


def fraction(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def rate(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def metrics(values: Mapping[str, float]) -> dict[str, float]:
    """A shipped model's metrics: accuracies as fractions, durations in seconds, counts as they are."""
    rounded: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, float):
            rounded[key] = seconds(value) if key.endswith("seconds") else fraction(value)
        else:
            rounded[key] = value
    return rounded
