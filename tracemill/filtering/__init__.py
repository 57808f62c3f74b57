"""Filtering: the filter rules, de-duplication, benchmark contamination, the funnel, and the stage."""
