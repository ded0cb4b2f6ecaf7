"""Exception hierarchy: every error the library raises on purpose derives from :class:`CoreError`."""

from __future__ import annotations

from collections.abc import Sequence


class CoreError(Exception):
    """Base class of the errors raised by ``core``."""


class InputError(CoreError, ValueError):
    """Bad user input: a file, a column or a value that is not what was expected.

    The message names the file, the column, the first offending rows (1-based data rows, the
    header not counted) with their values, and what was expected.
    """

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        column: str | None = None,
        rows: Sequence[int] = (),
        values: Sequence[object] = (),
        n_bad: int | None = None,
        expected: str | None = None,
    ) -> None:
        self.source = source
        self.column = column
        self.rows = [int(r) for r in rows]
        self.values = list(values)
        self.n_bad = len(self.rows) if n_bad is None else int(n_bad)
        self.expected = expected
        self.problem = problem
        super().__init__(self._format())

    def __reduce__(self) -> tuple:
        # Pickle by fields, so an error raised on a Dask worker reaches the caller as the same InputError.
        kw = {"column": self.column, "rows": self.rows, "values": self.values, "n_bad": self.n_bad, "expected": self.expected}
        return (_rebuild_input_error, (type(self), self.source, self.problem, kw))

    def _format(self) -> str:
        where = self.source
        if self.column is not None:
            where += f" column '{self.column}'"
        return f"{where}: {self.detail()}"

    def detail(self) -> str:
        """The message without the file name: problem, first rows with their values, what was expected."""
        parts = [self.problem]
        if self.rows:
            shown = ", ".join(
                f"row {r}" + (f" ({v!r})" if i < len(self.values) else "")
                for i, (r, v) in enumerate(zip(self.rows, list(self.values) + [None] * len(self.rows)))
            )
            more = self.n_bad - len(self.rows)
            parts.append(f"at {shown}" + (f" and {more} more rows" if more > 0 else ""))
        if self.expected:
            parts.append(f"expected {self.expected}")
        return "; ".join(parts)


class InputProblems(InputError):
    """Every problem found in one input (each failing column, each kind of problem, with counts).

    ``column``, ``rows`` and ``values`` are those of the first problem, so code that shows one
    problem keeps working; ``problems`` holds them all, in the order the columns were checked.
    """

    def __init__(self, source: str, problems: Sequence[InputError]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(
            source,
            first.problem,
            column=first.column,
            rows=first.rows,
            values=first.values,
            n_bad=first.n_bad,
            expected=first.expected,
        )

    def __reduce__(self) -> tuple:
        return (_rebuild_problems, (type(self), self.source, self.problems))

    def _format(self) -> str:
        problems = getattr(self, "problems", [])
        n_cols = len({p.column for p in problems})
        return f"{len(problems)} problems in {n_cols} column{'s' if n_cols != 1 else ''}: " + " | ".join(
            InputError._format(p) for p in problems
        )


def _rebuild_problems(cls: type[InputProblems], source: str, problems: list[InputError]) -> InputProblems:
    return cls(source, problems)


class ParameterError(CoreError, ValueError):
    """A parameter out of its range or of the wrong kind (the message names the parameter)."""


def _rebuild_input_error(cls: type[InputError], source: str, problem: str, kw: dict) -> InputError:
    return cls(source, problem, **kw)


class TrainingCancelled(CoreError):
    """Training was stopped by the caller's cancel check."""


class ReleaseError(CoreError):
    """A release folder or file does not have the OpenUAS layout."""
