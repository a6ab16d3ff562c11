"""Pure tensor math for MRI: centered FFTs, Cartesian masks, metrics. No Ray, no MLflow, no I/O."""
