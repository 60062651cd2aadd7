"""The JSON API under ``/api/v1``: thin routes over the store's operations.

Layering (as in Prefect's server): a route parses the request (:mod:`.schemas`), checks the
caller (:mod:`.auth`), calls one store operation and shapes the response. The store's models
are the response bodies; requests have their own schemas.
"""
