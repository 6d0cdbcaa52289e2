"""Training loop and evaluation."""
