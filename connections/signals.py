"""Signal handlers (none yet beyond imports kept for ready())."""
