"""Blog categories as fediverse hashtags.

A hashtag is one word: Mastodon's pattern accepts letters, combining marks, digits and
underscores (plus a middle dot or zero-width non-joiner inside a word) and needs at least one
letter. A category such as "Social Media" therefore loses its spaces and punctuation; the words
after the first get a capital initial ("social media" → "socialMedia") so the word boundaries
stay visible, which is what screen readers need (CamelCase hashtags). Everything else keeps
its case ("PR" stays "PR", "iPhone" stays "iPhone") and non-ASCII letters are kept as they
are ("Öffentlichkeit"). Servers match hashtags case-insensitively, so two categories that
differ only in case or punctuation ("Social Media", "social-media") are one hashtag.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Final

# Allowed inside a word but not at either end of a hashtag (Catalan "l·l", Persian ZWNJ).
_INNER_ONLY: Final = "·\u200c"


def hashtag_name(category: str) -> str | None:
    """The hashtag for one category, without ``#``; ``None`` when it has no letter at all.

    >>> hashtag_name("Social Media"), hashtag_name("PR"), hashtag_name("2010")
    ('SocialMedia', 'PR', None)
    """
    words: list[str] = []
    current: list[str] = []
    for character in unicodedata.normalize("NFC", category):
        if _is_word_character(character) or character in _INNER_ONLY:
            current.append(character)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    if not words:
        return None
    name = words[0] + "".join(word[:1].upper() + word[1:] for word in words[1:])
    name = name.strip(_INNER_ONLY)
    if not any(unicodedata.category(character).startswith("L") for character in name):
        # Mastodon rejects a hashtag without a letter ("#2010"), so there is none to give.
        return None
    return name


def hashtag_names(categories: Iterable[str]) -> list[str]:
    """The distinct hashtags of a list of categories, in order; the first spelling wins."""
    names: list[str] = []
    seen: set[str] = set()
    for category in categories:
        name = hashtag_name(category)
        if name is None or hashtag_key(name) in seen:
            continue
        seen.add(hashtag_key(name))
        names.append(name)
    return names


def hashtag_key(name: str) -> str:
    """The case-insensitive identity of a hashtag (what servers compare)."""
    return unicodedata.normalize("NFC", name.removeprefix("#")).casefold()


def _is_word_character(character: str) -> bool:
    # POSIX [[:word:]] as Ruby (and so Mastodon) reads it: letters, marks, decimal digits
    # and connector punctuation such as "_".
    category = unicodedata.category(character)
    return category[0] in "LM" or category in ("Nd", "Pc")
