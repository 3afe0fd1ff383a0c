"""The functions behind ``scripts/`` and ``coordnet demo``: each runs a study and returns its table."""
