"""Models declared in ``infer_configs/*.yaml``: their schema, safe loading, and running them on a volume."""
