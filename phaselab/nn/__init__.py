"""Neural-network building blocks shared by the generators and the reconstruction models (complex layers)."""
