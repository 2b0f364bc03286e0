"""PoseReel's Batch worker: analyses one chunk of a job's video (pose + tracking) and stores the
chunk result next to the plan. Run as ``python -m posereel_worker`` (the image's ENTRYPOINT)."""
