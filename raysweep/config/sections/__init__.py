"""One module per group of sweep-file sections."""
