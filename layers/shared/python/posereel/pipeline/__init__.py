"""The pipeline's stages as plain functions: each takes an event model, the settings and the
adapters it needs (job store, media store, workflow) and returns a result model.

No boto3 and no Lambda types here: the Lambda handlers in ``functions/`` wire real adapters in,
tests wire in-memory fakes. Import the stage modules directly; this package imports nothing.
"""
