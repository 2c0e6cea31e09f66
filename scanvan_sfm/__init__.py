"""scanvan-sfm: anonymize the panoramas of an openMVG reconstruction."""

__version__ = "0.1.0"
