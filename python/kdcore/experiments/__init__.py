"""Experiments on top of the library: the protocols and tables of the documentation."""
