"""tracemill: build R1-style reasoning datasets from problems, teachers and judges."""

__version__ = "0.1.0"
