"""The JSON-LD ``@context`` of every ActivityStreams document the bridge serves.

Where the context goes (one rule, so no document carries two and none carries none):

- **Top-level documents** carry ``@context``: whatever is served at its own URL or POSTed to an
  inbox. Activities (:mod:`bridge.activitypub.activities`) are born top-level, because their
  payload is frozen when recorded and delivered as is, so they include it themselves.
- **Objects and collections** are built without it (:mod:`bridge.activitypub.articles`,
  :mod:`bridge.activitypub.collections`) because they are mostly embedded in something else
  (an article inside its Create, a Create inside an outbox page). The web layer wraps them
  with :func:`with_context` when it serves one at its own id.
- **Embedded documents** never carry one: :func:`without_context` strips it when a top-level
  document (a recorded Create) is embedded in another (an outbox page).
"""

from __future__ import annotations

import copy
from typing import Any, Final

AS_NAMESPACE: Final = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT: Final = "https://w3id.org/security/v1"
PUBLIC: Final = f"{AS_NAMESPACE}#Public"
"""The special collection that addresses a post to everyone."""

# The extension terms are declared the way Mastodon declares them, and only those we emit:
# JSON-LD processors (Fedify, Misskey's, Mitra's) drop undeclared terms when they expand a
# document, so an undeclared `sensitive` or `featured` would silently vanish there.
# security/v1 is what makes `publicKey` (on actors) visible to those processors at all.
_EXTENSIONS: Final[dict[str, Any]] = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "toot": "http://joinmastodon.org/ns#",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
}

AS_CONTEXT: Final[list[Any]] = [AS_NAMESPACE, SECURITY_CONTEXT, _EXTENSIONS]
"""The ``@context`` value of every top-level document (treat as read-only)."""


def context() -> list[Any]:
    """A fresh copy of :data:`AS_CONTEXT`, safe to put into a document that may be mutated."""
    return copy.deepcopy(AS_CONTEXT)


def with_context(doc: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``doc`` with :data:`AS_CONTEXT` as its first key.

    An ``@context`` already in ``doc`` is replaced, so wrapping twice is harmless.
    """
    wrapped: dict[str, Any] = {"@context": context()}
    wrapped.update((key, value) for key, value in doc.items() if key != "@context")
    return wrapped


def without_context(doc: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``doc`` without ``@context``, for embedding it in another document."""
    return {key: value for key, value in doc.items() if key != "@context"}
