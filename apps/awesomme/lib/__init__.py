"""The app's tasks, as in MONAI Label's sample apps (configs, infers, trainers, activelearning, scoring)."""
