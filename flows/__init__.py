"""Prefect flows that compose the stages."""
