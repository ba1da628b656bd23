"""Mutation fuzzing of the stream, snapshot and diff readers (issue 8).

``mutate`` picks seeds from the fixture corpus and damages them; ``targets``
feeds the damage to the readers and checks that only our ``VMStateError``
family escapes, in linear time and bounded memory; ``run`` drives it all
(``python3 -m tests.fuzz.run --inputs 100000``).  ``corpus/`` holds the
minimized inputs ``tests/integration/test_fuzz.py`` replays; ``crashes/`` the reproducers
of bugs found (each replayed by an ``xfail(strict=True)`` test until fixed).
"""
