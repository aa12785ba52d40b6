"""Our HTTP API, mounted under ``/api`` on MONAI Label's server."""
