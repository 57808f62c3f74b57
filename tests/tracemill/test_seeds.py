"""Derived seeds are pinned: stores hold samples, shuffled options and generated scenes drawn with them."""

from tracemill.problems.choice import shuffled_order
from tracemill.problems.clevr_scenes import derived_rng
from tracemill.seeds import derive_seed, request_seed


def test_derived_seeds_keep_their_values():
    # Values from before the derivations were one function (sampling, the LLM judge, option shuffles, scenes).
    assert request_seed(0, "p0") == 545818227
    assert request_seed(7, "math500/abc") == 645765903
    assert all(request_seed(seed, f"p{seed}") < 2**30 for seed in range(200))
    assert derive_seed(3, "q") == 2189940494278099009
    assert derive_seed("scene", 1, 2, bits=128) == 21771162734867964614067813821938662674
    assert shuffled_order(10, 0, "p0") == [5, 3, 2, 6, 8, 1, 0, 4, 7, 9]
    assert derived_rng(0, 5, "p0").random() == 0.8854419180142036


def test_keys_and_bases_give_different_seeds():
    assert request_seed(0, "p1") != request_seed(0, "p2")
    assert request_seed(1, "p1") != request_seed(2, "p1")
