"""Errors shared by every module of `extract`; imports nothing of the project."""


class LoadError(RuntimeError):
    """A file could not be loaded at all; the message names the file and why."""
