"""AWESOMME on MONAI Label: a secure web platform for medical image analysis."""

__version__ = "0.1.0"
