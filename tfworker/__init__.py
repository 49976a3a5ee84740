"""TensorFusion worker daemon: supervises one GPU worker process per client session."""
