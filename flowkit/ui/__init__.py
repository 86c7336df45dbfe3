"""``flowkit ui``: a read-only web face over a store, and the pieces of ``flowkit report``.

An ASGI app (:func:`flowkit.ui.app.create_app`, Starlette) reading everything through
:mod:`flowkit.runs` and the store: no database and nothing written. Pages are rendered on the
server with Jinja2 (autoescape on, :mod:`flowkit.ui.templating`); assets are plain CSS and a
little vanilla JS shipped in the package (``static/``), never fetched from a CDN.

Needs the ``ui`` extra (``pip install "flowkit[ui]"``). ``import flowkit`` never imports this
package, so the core stays free of web libraries.
"""
