"""One error type for bad input, and a helper that turns it into a single clear line."""
from __future__ import annotations

__all__ = ["InputError", "DivergenceError"]


class InputError(ValueError):
    """Bad input that the user must fix.

    The message names the sample, the file, what is wrong and what to do, on one line.
    """

    def __init__(self, problem: str, *, sample: str | None = None, path: str | None = None,
                 fix: str | None = None):
        self.problem, self.sample, self.path, self.fix = problem, sample, path, fix
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.sample is not None:
            parts.append(f"sample '{self.sample}'")
        if self.path is not None:
            parts.append(f"file '{self.path}'")
        where = ", ".join(parts)
        msg = f"{where}: {self.problem}" if where else self.problem
        if self.fix:
            # a problem that ends a sentence itself ('... whole numbers: the raw counts?') takes no full stop
            # after it: it read 'the raw counts?. Fix:'
            msg += f"{'' if msg.endswith(('.', '?', '!')) else '.'} Fix: {self.fix}"
        return msg

    def located(self, *, sample: str | None = None, path: str | None = None) -> "InputError":
        """The same error with the sample and file filled in where they were unknown."""
        return InputError(self.problem, sample=self.sample or sample, path=self.path or path,
                          fix=self.fix)


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite, or grew past ``stcore.train.DIVERGENCE_FACTOR`` times
    its first value."""
