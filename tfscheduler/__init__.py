"""TensorFusion scheduler: pool, placement, leases, QoS, autoscaling recommender."""
