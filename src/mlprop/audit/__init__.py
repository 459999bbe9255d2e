"""Mutation audit: the mutmut driver, the ML mutants, the training-path re-test, shards and
merge (the fault catalogue they name is :mod:`mlprop.faults`)."""
