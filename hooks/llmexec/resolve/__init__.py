"""Resolve: a result for every block, from the lockfile, the cache or the worker, under the mode's policy."""
