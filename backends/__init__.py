"""One module per target: pure functions from the IR to files."""
