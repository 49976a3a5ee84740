"""TensorFusion client: allocate a vGPU from the scheduler and load the libcuda stub (attach())."""
