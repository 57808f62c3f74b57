"""Sampling: prompts, the streaming sampler, and the stage."""
