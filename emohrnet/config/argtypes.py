"""Argument types that check ranges when the command line is parsed.

Each is an ``argparse`` ``type=``: a bad value becomes argparse's one-line error naming the
option and the allowed values, with exit status 2, before anything starts (no Ray, no build).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def int_at_least(low: int) -> Callable[[str], int]:
    """A type accepting integers ``>= low``.

    Raises:
        argparse.ArgumentTypeError: not an integer, or below ``low``.
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer (allowed: an integer >= {low})") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is out of range (allowed: an integer >= {low})")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def float_above(low: float, *, inclusive: bool = False) -> Callable[[str], float]:
    """A type accepting finite numbers ``> low`` (``>= low`` when ``inclusive``).

    Raises:
        argparse.ArgumentTypeError: not a number, not finite, or out of range.
    """
    allowed = f"a number {'>=' if inclusive else '>'} {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number (allowed: {allowed})") from None
        if value != value or value in (float("inf"), float("-inf")) or value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"{text} is out of range (allowed: {allowed})")
        return value

    parse.__name__ = allowed
    return parse


def float_in(low: float, high: float, *, high_inclusive: bool = False) -> Callable[[str], float]:
    """A type accepting finite numbers in ``[low, high)`` (``[low, high]`` when ``high_inclusive``).

    Raises:
        argparse.ArgumentTypeError: not a number, not finite, or out of range.
    """
    allowed = f"a number from {low:g} to {high:g}" + (" inclusive" if high_inclusive else f", below {high:g}")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number (allowed: {allowed})") from None
        if not (low <= value < high or (high_inclusive and value == high)):  # NaN fails every comparison
            raise argparse.ArgumentTypeError(f"{text} is out of range (allowed: {allowed})")
        return value

    parse.__name__ = allowed
    return parse


def int_list(length: int | None = None, low: int = 1) -> Callable[[str], list[int]]:
    """A type accepting comma-separated integers ``>= low`` (exactly ``length`` of them if given),
    e.g. ``"1,1,4,3"``.

    Raises:
        argparse.ArgumentTypeError: an item is not an integer or is below ``low``, or the count is wrong.
    """
    count = f"{length} " if length else ""
    allowed = f"{count}comma-separated integers >= {low}"

    def parse(text: str) -> list[int]:
        try:
            values = [int(item) for item in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} (allowed: {allowed})") from None
        if (length and len(values) != length) or any(v < low for v in values):
            raise argparse.ArgumentTypeError(f"{text!r} (allowed: {allowed})")
        return values

    parse.__name__ = allowed
    return parse


def strict_bool(value: object, name: str = "value") -> bool:
    """``True``/``False`` from a bool or one of ``true/false, yes/no, 1/0, on/off`` (any case).

    Raises:
        ValueError: anything else (``"maybe"``, ``2``), naming ``name`` and the allowed values.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (allowed: true or false)")
