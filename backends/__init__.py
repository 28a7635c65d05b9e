"""Runtimes behind one small contract (bench.backends.base). Each backend's heavy library is imported only
inside its own module, and only when that backend is chosen."""
