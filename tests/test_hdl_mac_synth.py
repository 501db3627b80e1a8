# amaranth: UnusedElaboratable=no
"""Synthesis smoke (issue 3 section 4): the MAC units through Yosys generic synthesis
(:func:`lowbit.fpga.synth.synth`, which fails on latches, multiple drivers and loops), with the
flip-flop count pinned to the registers the design is meant to have."""

import pytest

from lowbit.hdl.manifest import to_verilog

pytestmark = pytest.mark.synth

synth_mod = pytest.importorskip("lowbit.fpga.synth")


@pytest.mark.parametrize("unit,params,flip_flops", [
    # acc (32) + acc_valid
    ("int-mac", {}, 33),
    # p (1 + 6 + 7 bits) + out_valid
    ("fp-mul", {}, 15),
    # acc (32) + acc_valid
    ("fp-mac", {}, 33),
    # Kulisch register (e4m3 x e4m3, 64 terms: 37 + 6 bits) + 4 flags + acc_valid
    ("fp-mac", {"mode": "kulisch", "terms": "64"}, 48),
])
def test_generic_synthesis(unit, params, flip_flops):
    from lowbit.hdl import catalog
    comp, _ = catalog.get_unit(unit).build(**params)
    top = unit.replace("-", "_")
    r = synth_mod.synth(to_verilog(comp, top), top, "generic")
    assert r.flip_flops == flip_flops
    assert r.area_ge > 0
