"""Pure tensor math for MRI: centered FFTs, geometry, phase maps, masks, metrics (image quality, phase-map
distances, FID). No Ray or MLflow; no I/O but reading the FID weights file a caller names."""
