"""The application: engine (durable_rules), state, CLI; later the gRPC servicers and metrics."""
