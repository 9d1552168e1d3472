"""The one error a user sees for a bad topology file: file, line, field, what is wrong."""

from __future__ import annotations


class TopologyError(Exception):
    def __init__(self, file: str, line: int | None, field: str, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
        super().__init__(text)
