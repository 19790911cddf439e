"""The training service: turns retraining requests into pipeline runs and keeps their records."""
