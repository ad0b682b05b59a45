"""Processes at the platform's edge, serving outsiders. They read domain events into projections of
their own and act through the platform's own doors (the Order API's Temporal calls); they publish no
event and own no event type, so they are not domain services (`schemas.EdgeProcess`)."""
