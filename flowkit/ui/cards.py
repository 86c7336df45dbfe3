"""A task's cards (:mod:`flowkit.card`) as HTML: :func:`card_html`, :func:`cards_html`.

Cards are data from the store, written by task code: a Markdown card is rendered by
markdown-it-py with raw HTML off (``<script>`` in it shows as text), image syntax off (an
image would be fetched from wherever it points) and links kept only to ``http(s)`` and
``mailto`` (no ``javascript:``); with ``links=False`` (the report, which must fetch nothing
and link nowhere) a link shows as its text, its target dropped. A table is escaped cell by
cell; an image is its PNG bytes as a ``data:`` URI, checked to be a PNG.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from markdown_it import MarkdownIt
from markupsafe import Markup

from flowkit.cardview import CardView
from flowkit.errors import FlowkitError
from flowkit.ui.preview import png_data_uri, short

_SAFE_LINKS = ("http://", "https://", "mailto:")


class _Markdown(MarkdownIt):
    """CommonMark whose links go only to ``http(s)`` and ``mailto``."""

    def validateLink(self, url: str) -> bool:  # markdown-it's name
        return url.strip().lower().startswith(_SAFE_LINKS)


@functools.cache
def _markdown(links: bool) -> MarkdownIt:
    md = _Markdown("commonmark", {"html": False, "linkify": False})
    md.disable("image")
    if not links:  # a link keeps its text, and its target is dropped
        md.add_render_rule("link_open", lambda *_: '<span class="link">')
        md.add_render_rule("link_close", lambda *_: "</span>")
    return md


def markdown_html(text: str, *, links: bool = True) -> Markup:
    """Markdown source as safe HTML (see the module docstring)."""
    html = _markdown(links).render(text)
    if links:  # open user links away from the page, without handing it the opener
        html = html.replace("<a href=", '<a rel="noopener noreferrer nofollow" href=')
    return Markup(html)  # safe: markdown-it escapes text; raw HTML is off


def card_html(card: CardView, *, links: bool = True) -> Markup:
    """One card as ``div.card`` (``data-kind`` says which)."""
    title = Markup("<h3>{}</h3>").format(short(card.title, 200)) if card.title else Markup("")
    if card.kind == "markdown":
        body = Markup('<div class="markdown">{}</div>').format(
            markdown_html(card.text, links=links)
        )
    elif card.kind == "table":
        body = _table(card)
    elif card.kind == "image":
        body = _image(card)
    else:  # read_cards keeps known kinds only; a newer flowkit may add some
        body = Markup('<p class="muted">a {} card (not shown by this flowkit)</p>').format(
            card.kind
        )
    return Markup('<div class="card" data-kind="{}">{}{}</div>').format(card.kind, title, body)


def cards_html(cards: Iterable[CardView], *, links: bool = True) -> Markup:
    return Markup("").join(card_html(c, links=links) for c in cards)


def _table(card: CardView) -> Markup:
    head = Markup("").join(Markup("<th>{}</th>").format(short(c)) for c in card.columns)
    body = Markup("").join(
        Markup("<tr>{}</tr>").format(
            Markup("").join(Markup("<td>{}</td>").format(_cell(v)) for v in row)
        )
        for row in card.rows
    )
    rows = len(card.rows)
    note = Markup("")
    if card.total_rows > rows:
        note = Markup('<p class="muted">first {} of {} rows</p>').format(
            f"{rows:,}", f"{card.total_rows:,}"
        )
    return Markup(
        '<table class="data"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>{}'
    ).format(head, body, note)


def _cell(value: object) -> str:
    if value is None:
        return ""
    return short(value) if not isinstance(value, str) else short(value, 200)


def _image(card: CardView) -> Markup:
    try:
        uri = png_data_uri(card.image())
    except (FlowkitError, ValueError) as exc:
        return Markup('<p class="error">the image cannot be shown: {}</p>').format(str(exc))
    alt = card.title or "image"
    return Markup('<img alt="{}" src="{}">').format(short(alt, 200), uri)


__all__ = ["card_html", "cards_html", "markdown_html"]
