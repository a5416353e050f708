"""A standalone C2SP witness: cosigns a log's checkpoints only as consistent extensions."""
