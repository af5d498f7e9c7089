"""prepbot: a platform-neutral core that runs a daily interview-practice group."""

__version__ = "0.1.0"
