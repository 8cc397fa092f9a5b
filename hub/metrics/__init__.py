"""Prometheus metrics: an observer of the pipeline plus series computed at scrape time.

    names          every exported metric: name, kind, labels, help (the reference)
    series         the counters and histograms a process counts into (created lazily)
    observer       MetricsObserver: counts records, runs, retries and vendor quotas
    states         flow and system states for the gauges, judged by hub.health (the rules
                   the dashboard shows too)
    collector      store- and broker-derived gauges, computed at each scrape
    multiproc      prometheus-client's multiprocess mode for `hub worker` and `hub serve`
    exposition     the registry /metrics renders
    exporter       a worker host's own /metrics (`hub worker --metrics-port`)

Nothing here is imported by the engine: `hub.sync` calls observer hooks, and the commands
that run flows (`hub worker`, `hub serve`, `hub sync`) add a MetricsObserver. This package
imports prometheus-client only in the modules that need it, so that multiproc.enable can
run before any metric exists.
"""
