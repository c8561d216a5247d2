"""How many SMS a text costs: GSM-7 (160 / 153 per part) or UCS-2 (70 / 67 per part).

One character outside the GSM 03.38 alphabet (an emoji, a curly quote, most accented letters)
switches the whole message to UCS-2, which more than halves what fits. `sms_clean` replaces
the usual culprits that come from typed names and copied venue descriptions first.
"""

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Sent as ESC + character: each counts as two.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

_REPLACEMENTS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2009": " ",
        "\t": " ",
    }
)


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int

    @property
    def single(self) -> bool:
        return self.parts == 1


def sms_clean(text: str) -> str:
    """The text with typographic quotes, dashes and spaces made GSM-7, whitespace tidied."""
    text = text.translate(_REPLACEMENTS)
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def sms_segments(text: str) -> Segments:
    """The encoding a phone network will use for this text, and how many parts it takes."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        return Segments("GSM-7", units, 1 if units <= 160 else -(-units // 153))
    units = len(text.encode("utf-16-le")) // 2
    return Segments("UCS-2", units, 1 if units <= 70 else -(-units // 67))
