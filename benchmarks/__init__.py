"""ssm_lfilter benchmark suite: ``python -m benchmarks`` (see benchmarks/README.md)."""
