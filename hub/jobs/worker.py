"""The module `hub worker` hands to dramatiq's worker processes.

Importing it loads the config named by $HUB_CONFIG, opens the store, picks the broker from
the config and declares the actors on it: each worker process does this once at start.
A worker process retries no HTTP call in place (HUB_HTTP_INLINE_RETRIES=0, see hub.http):
the jobs schedule retries instead of sleeping.
"""

from __future__ import annotations

import os

import dramatiq

from hub.config import find_config, load
from hub.http import INLINE_RETRIES_ENV
from hub.jobs.actors import Jobs
from hub.jobs.broker import make_broker
from hub.runtime import tune_gc
from hub.store import STORE_WAIT_SECONDS, Store

os.environ[INLINE_RETRIES_ENV] = "0"
settings = load(find_config(None))
store = Store(settings.store_url, wait=STORE_WAIT_SECONDS)
broker = make_broker(settings.broker_url)
dramatiq.set_broker(broker)
jobs = Jobs(settings, store, broker)
tune_gc()
