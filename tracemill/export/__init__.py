"""Exports: the layouts, the dataset card, and the stage."""
