"""The report's exception family: each error names what was asked and why it cannot be done."""

from __future__ import annotations

__all__ = [
    "MonthSpecError",
    "NoDataError",
    "PdfEngineError",
    "ReportError",
    "ReportInputError",
    "UnknownParkError",
]


class ReportError(Exception):
    """Base of every error of the monthly report."""


class ReportInputError(ReportError, ValueError):
    """A bad request (month, park, language, variant or format): the caller must change it."""


class MonthSpecError(ReportInputError):
    """A month that is not ``YYYY-MM``.

    Attributes
    ----------
    text : str
        The month as given.
    """

    def __init__(self, text: str) -> None:
        super().__init__(f"{text!r} is not a month YYYY-MM (e.g. 2026-10)")
        self.text = text


class UnknownParkError(ReportInputError, LookupError):
    """A park code that is not in the registry.

    Attributes
    ----------
    park_code : str
        The code asked for.
    known : tuple of str
        The registered park codes.
    """

    def __init__(self, park_code: str, known: tuple[str, ...]) -> None:
        listed = ", ".join(known) if known else "none registered yet"
        super().__init__(f"unknown park {park_code!r} (parks: {listed})")
        self.park_code = park_code
        self.known = known


class NoDataError(ReportError):
    """No energy or intensity figures for the month and scope asked for.

    Attributes
    ----------
    month : str
        The month asked for (``YYYY-MM``).
    reason : str
        What data exists instead (the months with data, or that there is none yet).
    """

    def __init__(self, month: str, reason: str) -> None:
        super().__init__(f"no data for {month} ({reason})")
        self.month = month
        self.reason = reason


class PdfEngineError(ReportError):
    """WeasyPrint cannot be loaded (usually: the system's Pango is missing or older than 1.44).

    Attributes
    ----------
    cause : str
        The loader's message.
    """

    HINT = (
        "install Pango >= 1.44 (Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0;"
        " macOS: brew install pango; see https://doc.courtbouillon.org/weasyprint/stable/"
        "first_steps.html#installation), or ask for --format html only"
    )

    def __init__(self, cause: str) -> None:
        super().__init__(f"the PDF engine (WeasyPrint) cannot start: {cause}; {self.HINT}")
        self.cause = cause
