"""PoseReel's CDK app: one set of stacks per environment (dev, staging, prod), built by
``infra.app.build_environments`` from the typed settings in ``infra.config``."""
