"""Training of the demo segmentation models on synthetic phantoms (``python -m awesomme.training``).

Everything here trains on exactly what serving feeds the network: :func:`awesomme.inference.predict.preprocess`
followed by the config's ``downsample``.  Seeds from ``EVALUATION_SEED_START`` (50000) up are used only by
:mod:`awesomme.training.evaluate`, never for training, tuning or selection.
"""
