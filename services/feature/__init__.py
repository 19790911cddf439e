"""The feature service: streaming events into the Feast store (``python -m services.feature``)."""
