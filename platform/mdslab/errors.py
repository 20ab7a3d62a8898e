"""Errors that reach a person. Each message is one line that says what happened and what to do."""


class MdslabError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class ConfigurationError(MdslabError):
    """A setting is missing or contradicts another one."""


class ServiceUnavailableError(MdslabError):
    """An endpoint does not answer (not started, wrong address, or wrong credentials)."""
