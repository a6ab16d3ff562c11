"""The one error type for bad input data: it always names the file and what is wrong."""

from pathlib import Path


class DataError(ValueError):
    """Raised for unreadable or invalid input; ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
