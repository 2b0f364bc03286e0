"""The three stages of an analysis, as the serverless pipeline runs them, each in its own module so
that each place imports only what it runs:

- ``stages.analyze.analyze_chunk`` (the worker container, per chunk): decode + pose + tracking,
  with chunk-local track ids;
- ``stages.merge.merge_chunks`` (the merge function): stitch the chunks, then motion, segments,
  metrics and the primary subject;
- ``stages.compile.render_results`` (the compile function): the reel, overlay, thumbnails,
  timeline plot and data files.

``posereel.engine.analyze_video`` runs all three on one machine.
"""
