"""Problems: the sources (a module per kind), their configs, and the stage that writes problem shards."""
