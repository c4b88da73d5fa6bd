"""A nemesis: randomized faults from a seeded schedule against two sites and a witness, with invariants.

`Nemesis(pair, seed=N).run(duration)` on a running `sharedcore_testbed.pair.Pair` (Automatic mode) draws
episodes of faults (`schedule`), injects and heals them (`faults`), lets the pair settle and checks the
invariants between episodes and at the end (`checks`, `convergence`; on a real database, given its `traffic`,
`database` and `windows` too), and returns the results: every fault with its kind and time, every violation,
the figures. `bench/nemesis.py` runs it on a testbed of its own;
cluster tests run short schedules on the session's sites (kwok) and on the real-database tests' pair.
"""

from sharedcore_testbed.nemesis.checks import Invariant, Settled, Violation
from sharedcore_testbed.nemesis.run import REAL_BOUNDS, Bounds, Nemesis, summary

__all__ = ["REAL_BOUNDS", "Bounds", "Invariant", "Nemesis", "Settled", "Violation", "summary"]
