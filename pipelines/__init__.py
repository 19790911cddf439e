"""Kubeflow Pipelines for RTML: the ``rtml-training`` pipeline and the steps its components run."""

import services  # noqa: F401 - first, so Feast is imported with typeguard's instrumentation off (services/__init__.py)
