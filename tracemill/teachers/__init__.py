"""Teachers: one interface, the vLLM offline engine and OpenAI-compatible endpoints behind it."""
