"""Problem sources: where problems come from before any teacher sees them."""
