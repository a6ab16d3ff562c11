"""Pure tensor math for MRI: centered FFTs, geometry, phase maps, masks, metrics. No Ray, MLflow or I/O."""
