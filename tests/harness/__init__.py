"""Test harness: throwaway network namespaces, kernel capability probes, and the
real systemd-networkd run inside a namespace (see tests/test_harness.py)."""
