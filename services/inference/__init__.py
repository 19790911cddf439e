"""The inference service: fraud scores over HTTP from the champion model and online features, served by BentoML."""
