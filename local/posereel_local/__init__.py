"""PoseReel's tooling: the command line (``posereel``) and the embedded local AWS it runs the
pipeline on (moto in server mode, hooked to run the real handlers, Batch job commands and
Step Functions workflow on one machine). Nothing here ships to Lambda or the worker images.

Importing this package is cheap (standard library only): Lambda worker processes import its
``hooks.lambda_runtime``; moto and boto3 load when a LocalAws starts.
"""
