"""Tools for development and the demo: the configuration reference and the tiny local model."""
