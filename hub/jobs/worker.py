"""The module `hub worker` hands to dramatiq's worker processes.

Importing it loads the config named by $HUB_CONFIG, opens the store, picks the broker from
the config and declares the actors on it: each worker process does this once at start.
"""

from __future__ import annotations

import dramatiq

from hub.config import find_config, load
from hub.jobs.actors import Jobs
from hub.jobs.broker import make_broker
from hub.store import Store

settings = load(find_config(None))
store = Store(settings.store_url)
broker = make_broker(settings.broker_url)
dramatiq.set_broker(broker)
jobs = Jobs(settings, store, broker)
