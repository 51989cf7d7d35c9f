"""Argument rules shared by constructors and the runner's validation (no torch needed).

A constructor checks its arguments with these rules, so a library user gets the same one-line
``SettingError`` that ``cl-run`` shows for the same value in a config file (prefixed with the
config group there).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from cl_runner.errors import UserError

MAX_SHOWN = 80  # characters of a refused value shown in the message


class SettingError(UserError, ValueError):
    """A setting that cannot work: its name, its value and what is allowed, in one line."""

    def __init__(self, name: str, value: Any, allowed: str) -> None:
        shown = repr(value)
        if len(shown) > MAX_SHOWN:
            size = len(value) if isinstance(value, str) else len(shown)
            shown = f"{shown[:MAX_SHOWN - 20]}... ({size} characters)"
        super().__init__(f"{name}={shown} is not allowed: {allowed}")
        self.name, self.value, self.allowed = name, value, allowed

    def within(self, prefix: str) -> SettingError:
        """The same error for the setting ``prefix.name`` (a config group's key)."""
        name = f"{prefix}.{self.name}" if self.name else prefix
        return SettingError(name, self.value, self.allowed)


@dataclass(frozen=True)
class Rule:
    """A predicate on a value and the words that say what it allows."""

    test: Callable[[Any], bool]
    allowed: str

    def __call__(self, name: str, value: Any) -> Any:
        """``value`` if allowed, else a SettingError naming ``name``."""
        if not self.test(value):
            raise SettingError(name, value, self.allowed)
        return value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


INT = Rule(is_int, "an integer")
SEED = Rule(lambda v: is_int(v) and 0 <= v < 2**63, "an integer from 0 to 2**63-1")
POSITIVE_INT = Rule(lambda v: is_int(v) and v > 0, "a positive integer")
NON_NEGATIVE_INT = Rule(lambda v: is_int(v) and v >= 0, "a non-negative integer")
OPTIONAL_POSITIVE_INT = Rule(lambda v: v is None or POSITIVE_INT.test(v),
                             "null or a positive integer")
POSITIVE_NUMBER = Rule(lambda v: is_number(v) and v > 0, "a positive number")
NON_NEGATIVE_NUMBER = Rule(lambda v: is_number(v) and v >= 0, "a non-negative finite number")
FRACTION = Rule(lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)")
PROBABILITY = Rule(lambda v: is_number(v) and 0 <= v <= 1, "a number in [0, 1]")
BOOL = Rule(lambda v: isinstance(v, bool), "true or false")


def one_of(values: Iterable[Any]) -> Rule:
    """Exactly one of ``values`` (compared with ==, so None is allowed when listed)."""
    values = tuple(values)
    words = ", ".join("null" if v is None else str(v) for v in values)
    return Rule(lambda v: any(v == x and type(v) is type(x) for x in values), f"one of {words}")


def at_least(minimum: int, why: str = "") -> Rule:
    """An integer >= ``minimum``; ``why`` explains the bound."""
    words = f"an integer >= {minimum}" + (f" ({why})" if why else "")
    return Rule(lambda v: is_int(v) and v >= minimum, words)


def setting(default: Any, rule: Rule) -> Any:
    """A dataclass field with a default and the rule its values must follow."""
    return field(default=default, metadata={"rule": rule})


def field_rule(settings_type: type, name: str) -> Rule | None:
    """The rule declared for field ``name`` of a ``Settings`` dataclass, if any."""
    if not is_dataclass(settings_type):
        return None
    for f in fields(settings_type):
        if f.name == name:
            return f.metadata.get("rule")
    return None


class Settings:
    """Base of structured-config dataclasses: each field's rule is checked on creation.

    OmegaConf builds the dataclass (``OmegaConf.to_object``) after checking the field types;
    ``__post_init__`` then applies the rules, so a value is refused with the same words
    whether its type or its range is wrong.
    """

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            rule = f.metadata.get("rule")
            if rule is not None:
                rule(f.name, getattr(self, f.name))
