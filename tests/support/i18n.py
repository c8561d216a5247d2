"""Finding English left in a template: text a member reads that no translation tag carries."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
_BLOCKS = re.compile(
    r"{%\s*(blocktranslate|blocktrans|comment)\b.*?{%\s*end\1\s*%}|{#.*?#}|<!--.*?-->", re.S
)
_TAGS = re.compile(r"{%.*?%}|{{.*?}}", re.S)
# The attributes a person reads or hears (a screen reader reads labels and titles).
_READ = re.compile(r'\b(?:aria-label|title|placeholder|alt|data-label)="([^"]*)"')
_HTML = re.compile(r"<(script|style)\b.*?</\1>|<[^>]*>", re.S)
# What is the same in both languages: our name, product names, symbols and numbers.
_SAME = re.compile(
    r"Sound\s*Fusion|SoundFusion|M-Pesa|WhatsApp|SMS|KES|Paybill|Google Calendar|iPhone|"
    r"Android|Kiswahili|English|KRA PIN|&[a-z]+;|&#\d+;|^\s*(Sound|Fusion)\s*$"
)


def english_left(path: Path) -> list[str]:
    """The pieces of readable text outside {% translate %} / {% blocktranslate %}."""
    source = _TAGS.sub(" ", _BLOCKS.sub(" ", path.read_text()))
    pieces = _READ.findall(source) + _HTML.sub("\n", source).split("\n")
    return [
        " ".join(piece.split())
        for piece in pieces
        if re.search(r"[A-Za-z]{2,}", _SAME.sub(" ", piece))
    ]
