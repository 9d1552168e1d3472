"""Checkers: each judges a history and returns a Verdict (see base.py)."""

from .base import UNKNOWN, Verdict, merge

__all__ = ["UNKNOWN", "Verdict", "merge"]
