"""Rate limits in front of every Graph request: Graph's limits as data, one algorithm, Redis and in-process backends."""
