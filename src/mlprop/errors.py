"""Errors mlprop raises: each names what is wrong, what was expected and what was found."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``field`` should have been ``expected`` but was ``actual``."""

    field: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected}, got {self.actual}"


class MlpropError(Exception):
    """Base class of every error mlprop raises on purpose."""


class SchemaError(MlpropError, ValueError):
    """Data does not fit an :class:`~mlprop.schema.ImageSchema`; lists every violation."""

    def __init__(self, violations: list[Violation]) -> None:
        if not violations:
            raise ValueError("SchemaError needs at least one violation")
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        count = len(self.violations)
        super().__init__(f"{count} schema violation{'s' if count > 1 else ''}:\n{lines}")

    @property
    def fields(self) -> list[str]:
        """The names of the violated fields, in the order they were found."""
        return [v.field for v in self.violations]


class TargetError(MlpropError, TypeError):
    """A target (or a target spec such as ``module:attr``) is malformed."""

    def __init__(self, field: str, expected: str, actual: str) -> None:
        self.violation = Violation(field, expected, actual)
        super().__init__(f"bad target: {self.violation}")


class IdxFormatError(MlpropError, ValueError):
    """An IDX file is corrupt: wrong magic, truncated, or inconsistent dimensions."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: not a valid IDX file: {reason}")


class PackageIntegrityError(MlpropError, ValueError):
    """A model package is missing, incomplete, tampered with or truncated."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: model package rejected: {reason}")


class WriteError(MlpropError, OSError):
    """Writing a file or package failed (disk full, no permission, read-only file system).

    Raised by :mod:`mlprop.atomic` after it has removed its temp file, so the target path
    holds either its previous content or nothing new. ``errno`` is the underlying
    ``OSError``'s, so callers that catch ``OSError`` still see it.
    """

    def __init__(self, path: object, reason: str, errno: int | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: cannot write: {reason}")
        self.errno = errno
