"""The package version, read by ``kdcore.__version__``, ``show_config`` and the build metadata."""

__version__ = "0.1.0"
