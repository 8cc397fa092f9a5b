"""The error the mapping compilers raise for a wrong spec, before it has a file and line.

Path, transform and condition compilers do not know which file or line they are compiling;
they raise `SpecError` with problems relative to the piece they were given, and the loader
(or `compile_mapping`) turns each into a located `hub.errors.Problem`.
"""

from __future__ import annotations

from collections.abc import Sequence

RelPath = tuple[str | int, ...]


class SpecError(ValueError):
    """One or more problems in a piece of a mapping spec; each is (relative key path, message)."""

    def __init__(self, message: str, path: Sequence[str | int] = (),
                 problems: Sequence[tuple[RelPath, str]] | None = None):
        self.problems: list[tuple[RelPath, str]] = (
            list(problems) if problems is not None else [(tuple(path), message)])
        super().__init__("; ".join(m for _, m in self.problems))

    def under(self, prefix: Sequence[str | int]) -> SpecError:
        """The same problems, with `prefix` put in front of every relative path."""
        pre = tuple(prefix)
        return SpecError("", problems=[(pre + p, m) for p, m in self.problems])
