"""``streams.selfdesc`` is the old name of ``streams.snapshots``: every public name still imports from it."""

import streams.convert
import streams.selfdesc
import streams.snapshots


def test_the_old_name_re_exports_the_same_objects() -> None:
    assert set(streams.selfdesc.__all__) == set(streams.snapshots.__all__) | {"convert"}
    for name in streams.snapshots.__all__:
        assert getattr(streams.selfdesc, name) is getattr(streams.snapshots, name), name
    assert streams.selfdesc.convert is streams.convert.convert
