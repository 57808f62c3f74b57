"""Shard-level Prefect tasks: read a shard, call the library, write a shard, return its location."""
