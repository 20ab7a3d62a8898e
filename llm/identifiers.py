"""The keys a question names (claims, policies, customers, merchants, police reports, flights), found
by shape: the retriever looks them up exactly, and the answer step checks a quoted sentence against them."""

from __future__ import annotations

import re

IDENTIFIER = re.compile(r"\b[A-Za-z]{1,3}-?\d{3,}(?:-\d+)*\b")


def find_identifiers(question: str) -> list[str]:
    """Claim, policy, customer and merchant keys, police report and flight numbers named in a question."""
    return list(dict.fromkeys(match.group(0) for match in IDENTIFIER.finditer(question)))
