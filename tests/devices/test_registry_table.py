"""The default registry imports devices per section, and answers as a registry of every state class would."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY, LazyRegistry, Registry, display_descriptions
from devices._eager import all_state_classes, display_groups, table_source
from devices._table import STATE_CLASSES
from devices.virtio.common import virtio_description
from devices.virtio.sections import DEVICE_NAMES, virtio_section
from streams.qemu.configuration import CONFIGURATION
from tests.support.paths import ROOT
from vmstate.display import display_table
from vmstate.dump.kinds import display_kinds


def _eager() -> Registry:
    return Registry(all_state_classes(), lookups=[virtio_section])


def test_the_committed_table_is_what_the_state_classes_give() -> None:
    assert (ROOT / "devices" / "_table.py").read_text() == table_source(), "run python3 -m devices._eager"


_KEYS = sorted({*STATE_CLASSES, *DEVICE_NAMES, "slirp", "cpu@x86_64"})
_IDSTRS = st.one_of(
    st.sampled_from(_KEYS),
    st.builds(lambda path, key: f"{path}/{key}", st.sampled_from(["0000:00:02.0", "virtio-mmio@000000000a003e00", "spapr"]),
              st.sampled_from(_KEYS)),
)


@settings(max_examples=300, deadline=None)
@given(idstr=_IDSTRS, version=st.integers(-1, 14), order=st.randoms(use_true_random=False))
def test_a_fresh_lazy_registry_answers_every_lookup_as_the_eager_one(idstr: str, version: int, order: object) -> None:
    eager, lazy = _eager(), LazyRegistry(STATE_CLASSES, lookups=[virtio_section])
    asked = [(other, v) for other in _KEYS[:8] for v in (1, 5, 12)]
    order.shuffle(asked)  # type: ignore[attr-defined]
    for other, v in asked[:5]:  # whatever was asked before must not change the answer
        assert lazy.candidates(other, 0, v) == eager.candidates(other, 0, v)
    assert lazy.candidates(idstr, 0, version) == eager.candidates(idstr, 0, version)
    assert lazy(idstr, 0, version) == eager(idstr, 0, version)


def test_named_descriptions_and_registering_keep_the_eager_order() -> None:
    eager = _eager()
    for description in eager.descriptions():
        assert LazyRegistry(STATE_CLASSES).named(description.name) is description
    assert LazyRegistry(STATE_CLASSES).descriptions() == eager.descriptions()
    lazy, extra = LazyRegistry(STATE_CLASSES), all_state_classes()[0]  # ``timer``: a second one is tried after ours
    lazy.register(extra)
    eager.register(extra)
    assert lazy.candidates("timer", 0, 2) == eager.candidates("timer", 0, 2)


def test_a_section_imports_its_devices_only() -> None:
    code = (
        "import sys; from devices import DEFAULT_REGISTRY as r\n"
        "assert r('cpu', 0, 12).name == 'cpu@x86_64' and r('0000:00:02.0/virtio-net', 0, 11) is not None\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('devices.'))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()
    assert "devices.machine.x86_cpu" in loaded and "devices.virtio.net" in loaded
    for other in ("devices.machine.ppc", "devices.machine.pc_isa", "devices.virtio.gpu", "devices.virtio.blk"):
        assert other not in loaded


@pytest.mark.parametrize("name", sorted(display_groups()))
def test_display_descriptions_give_the_hints_of_each_name(name: str) -> None:
    hints = display_table(display_descriptions(name))
    assert any(owner == name for owner, _ in hints)


def test_the_lazy_display_table_is_the_table_of_every_description() -> None:
    everything = display_table(
        [*_eager().descriptions(), virtio_description("pci"), virtio_description("mmio"), CONFIGURATION]
    )
    asked = {key: display_kinds().get(key) for key in everything}
    assert asked == everything
    assert display_kinds().get(("no-such-vmsd", "field")) is None
    assert dict(display_kinds()) == everything
    assert DEFAULT_REGISTRY.descriptions() == _eager().descriptions()


def test_each_virtio_device_is_listed_under_its_savevm_name() -> None:
    from devices.virtio.sections import DEVICE_CLASSES, device_class

    assert list(DEVICE_CLASSES) == list(DEVICE_NAMES)
    for name in DEVICE_NAMES:
        assert device_class(name).savevm_name == name
