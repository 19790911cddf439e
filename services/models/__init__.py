"""Fraud models: the scikit-learn baseline, the PyTorch MLP, their artifact format and drift references."""
