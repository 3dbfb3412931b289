"""Generated gRPC code for the ``rulebook`` proto packages (see ``service.api``)."""
