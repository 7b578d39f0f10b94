"""Noto Sans CJK SC for the charts (matplotlib) and the PDF (WeasyPrint @font-face).

The font files come from the ``mpl-font`` wheel (Noto Sans CJK, SIL Open Font License
1.1, https://github.com/notofonts/noto-cjk), so that Chinese renders on a machine
without CJK fonts. They are located through the distribution's file list: importing
the ``mpl_font`` package itself would import ``matplotlib.pyplot`` and change
matplotlib's global font settings, and only its files are used here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from reports.errors import ReportError

__all__ = ["CJK_FAMILY", "CjkFont", "FontMissingError", "font_face_css", "matplotlib_family", "noto_sans_cjk"]

CJK_FAMILY = "Noto Sans CJK SC"
_DISTRIBUTION = "mpl-font"
_FILES = {
    "regular": "mpl_font/fonts/noto/NotoSansCJKsc-Regular.otf",
    "bold": "mpl_font/fonts/noto/NotoSansCJKsc-Bold.otf",
}


class FontMissingError(ReportError):
    """The Noto Sans CJK SC files are not installed (the ``mpl-font`` wheel is missing)."""


@dataclass(frozen=True, slots=True)
class CjkFont:
    """The two weights of the report's font.

    Attributes
    ----------
    family : str
        Family name, as matplotlib and CSS know it.
    regular, bold : Path
        OpenType (CFF) files.
    """

    family: str
    regular: Path
    bold: Path


@functools.cache
def noto_sans_cjk() -> CjkFont:
    """The installed Noto Sans CJK SC files.

    Raises
    ------
    FontMissingError
        The ``mpl-font`` distribution or one of its files is missing.
    """
    try:
        dist = distribution(_DISTRIBUTION)
    except PackageNotFoundError as exc:
        raise FontMissingError(
            f"the {_DISTRIBUTION} package is not installed (pip install mpl-font)"
        ) from exc
    paths = {weight: Path(str(dist.locate_file(name))) for weight, name in _FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise FontMissingError(f"font file missing: {path} (reinstall mpl-font)")
    return CjkFont(CJK_FAMILY, paths["regular"], paths["bold"])


@functools.cache
def matplotlib_family() -> str:
    """Register the font with matplotlib's font manager (once) and return its family name."""
    from matplotlib import font_manager  # noqa: PLC0415 - matplotlib loads only when charts are drawn

    font = noto_sans_cjk()
    known = {entry.fname for entry in font_manager.fontManager.ttflist}
    for path in (font.regular, font.bold):
        if str(path) not in known:
            font_manager.fontManager.addfont(str(path))
    return font.family


def font_face_css(font: CjkFont) -> str:
    """``@font-face`` rules pointing at the font files (``file:`` URIs), for WeasyPrint."""
    return "".join(
        f'@font-face {{ font-family: "{font.family}"; src: url("{path.as_uri()}");'
        f" font-weight: {weight}; }}\n"
        for weight, path in (("normal", font.regular), ("bold", font.bold))
    )
