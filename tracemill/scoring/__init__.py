"""The scores stage: verifiers (reward models, process reward models, LM judges) score every judged sample.

Weaver's third step: users study and select samples with verifiers. Config in ``config``, the pooling
engine in ``pooling``, the shard function in ``scores``, what each verifier is worth in ``worth``.
"""
