"""Model weights for the metrics that need a model: where they live, what each is, how to fetch it.

``catalog`` names every model a metric of the registry needs, the library that loads it and the
command an organizer runs on a connected machine to fetch it into the model directory; ``store``
answers whether a model is present under ``<model_dir>/<name>`` and loads it once per process with
hub access switched off. Nothing here imports torch at module level: the default worker and the
scheduler import the registry and the catalog, never a model library.
"""
