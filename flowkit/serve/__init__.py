"""``flowkit serve``: registered models over HTTP, following their registry alias.

An ASGI app (:func:`flowkit.serve.app.create_app`, Starlette) speaking MLflow's scoring
protocol (``POST /invocations``), with ``/health``, ``/version`` and Prometheus ``/metrics``:

* :mod:`flowkit.serve.models` -- what is served: :class:`~flowkit.serve.models.ServeConfig`,
  the loaded versions, the thread that follows the alias, canary and shadow routing;
* :mod:`flowkit.serve.scoring` -- reading and checking a request body, writing predictions;
* :mod:`flowkit.serve.batching` -- the requests waiting for one version scored together;
* :mod:`flowkit.serve.metrics` -- the Prometheus counters and histogram of one app.

Needs the ``serve`` extra (``pip install "flowkit[serve]"``) and the ``ml`` extra. ``import
flowkit`` never imports this package, so the core stays free of web libraries.
"""
