"""Unified social credit codes (统一社会信用代码) for simulated enterprises.

GB 32100-2015: 18 characters = registration authority (1) + entity type (1) +
administrative division (6) + organisation code (9, GB 11714-1997, with its own
check character) + check character (1) over a 31-character alphabet without
I, O, S, V, Z.
"""

from __future__ import annotations

import numpy as np

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of GB 32100-2015 (no I, O, S, V, Z)."""

_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # GB 32100-2015 §5
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714-1997


def _org_value(char: str) -> int:
    return int(char) if char.isdigit() else ord(char) - ord("A") + 10


def organisation_check(body: str) -> str:
    """Check character of an 8-character organisation code body (GB 11714-1997)."""
    if len(body) != 8:
        raise ValueError(f"organisation code body must have 8 characters, got {body!r}")
    remainder = 11 - sum(_org_value(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True)) % 11
    return "X" if remainder == 10 else "0" if remainder == 11 else str(remainder)


def uscc_check(first17: str) -> str:
    """Check character of the first 17 characters of a unified social credit code (GB 32100-2015)."""
    if len(first17) != 17:
        raise ValueError(f"need 17 characters, got {first17!r}")
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """True when ``code`` has 18 characters of the alphabet and a correct check character."""
    return (
        len(code) == 18
        and all(c in USCC_ALPHABET for c in code)
        and organisation_check(code[8:16]) == code[16]
        and uscc_check(code[:17]) == code[17]
    )


def make_uscc(division: str, rng: np.random.Generator) -> str:
    """A code for a company (``91``) registered in ``division``, body ``MA4`` + 5 random characters.

    ``MA`` starts the organisation codes issued since the 2015 reform, as on
    Ezhou's business licences.
    """
    letters = "".join(USCC_ALPHABET[int(i)] for i in rng.integers(0, len(USCC_ALPHABET), 5))
    body = "MA4" + letters
    first17 = f"91{division}{body}{organisation_check(body)}"
    return first17 + uscc_check(first17)
