"""vnetc benchmarks; see bench/__main__.py (python -m bench --help)."""
