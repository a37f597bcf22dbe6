"""Tiny, randomly initialised pipelines of each supported architecture.

Built offline from constructor arguments (no hub, no tokenizer download), for tests,
benchmarks and docs. Each family's builder lives in its own module here.
"""
