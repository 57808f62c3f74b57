"""Judging: answers, grading, the grade pool, the LLM judge, relabel, and the stage."""
