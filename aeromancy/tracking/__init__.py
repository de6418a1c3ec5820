"""Experiment trackers (W&B, none) behind one protocol, and environment capture."""
