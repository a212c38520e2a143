"""User-facing errors, and the one way to shorten any error to a line.

Everything a user can get wrong (params, files, options) raises `UserError` with a one-line
message naming the key or file and what was expected; the CLI prints it without a traceback
and exits non-zero. Anything else reaching the CLI is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ConfigError(UserError):
    """An invalid `params.yaml` (unknown key, wrong type, out of range, bad choice)."""


class CandidateFailure(Exception):
    """A candidate that cannot be trained; `reason` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def __reduce__(self):  # crosses process boundaries with its reason intact
        return CandidateFailure, (self.reason, self.detail)


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an error's message, or its type name when it has none
    (libraries raise errors with empty or multi-line messages; our messages are one line)."""
    for line in str(err).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(err).__name__
