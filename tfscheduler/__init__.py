"""TensorFusion scheduler: pool, placement, leases, QoS, autoscaling recommender.

    placement.py  pure placement core (numpy-column index, strategies, quotas, QoS preemption)
    state.py      the state machine: workers, allocations, leases; write-through to a Store
    storage.py    the Store interface and its SQLite (WAL) engine
    lease.py      signed lease tokens (sign/verify), shared with the worker daemon
    models.py     known GPU models -> FP16 dense TFLOPS
    server.py     gRPC edge (grpc.aio): serve(listen, db_path, secret, ...) -> SchedulerServer
    __main__.py   `python -m tfscheduler --listen HOST:PORT --db PATH --secret-file F`
"""
