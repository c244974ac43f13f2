"""Data sources, splits and the torch datasets the trainer iterates."""
