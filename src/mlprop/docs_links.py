"""Links from mlprop's output to its documentation site.

Invariant: every link a failure message or a report prints points at the anchor the
generated reference gives that property (``docs/hooks/reference.py`` renders each property
under ``{#<name>}`` on ``reference/properties.md``, published as ``reference/properties/``);
one function builds them, so the note and the report cannot disagree, and a test checks the
base URL against ``site_url`` in ``docs/mkdocs.yml`` and ``Documentation`` in
``pyproject.toml``.
"""

from __future__ import annotations

__all__ = ["DOCS_URL", "page_url", "property_url"]

DOCS_URL = "https://mlprop.readthedocs.io/"
"""The published documentation site (``site_url`` of ``docs/mkdocs.yml``)."""


def property_url(name: str) -> str:
    """The reference entry of property ``name`` (a test function of ``mlprop.properties``,
    e.g. ``test_preprocess_is_batch_independent``; a parametrized id such as
    ``test_x[rotate]`` is reduced to its function)."""
    return page_url("reference/properties", name.split("[", 1)[0])


def page_url(page: str, anchor: str = "") -> str:
    """The published address of docs page ``page`` (its path under ``docs/pages`` without
    ``.md``, e.g. ``how-to/audit``), with ``#anchor`` when given: what mlprop's messages
    send a user to instead of a README section."""
    return f"{DOCS_URL}{page.strip('/')}/" + (f"#{anchor}" if anchor else "")
