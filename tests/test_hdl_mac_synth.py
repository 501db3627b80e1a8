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
    # LUT multiplier of the INT8 MAC: tree level 1 (sums of partial products 0+1, 2+3, 4+5,
    # 6+7 at shifts 0, 2, 4, 6: 16 + 14 + 12 + 10 bits, of which 5 + 3 + 1 + 0 are copies of
    # the sign of an 11-bit value and merged by Yosys), level 2 (16 + 12 bits, 3 sign
    # copies), product (16), valid/clear delayed 3 cycles (6), acc (32) + acc_valid
    ("int-mac", {"pipeline_stages": "3"}, (52 - 9) + (28 - 3) + 16 + 6 + 33),
])
def test_generic_synthesis(unit, params, flip_flops):
    from lowbit.hdl import catalog
    comp, _ = catalog.get_unit(unit).build(**params)
    top = unit.replace("-", "_")
    r = synth_mod.synth(to_verilog(comp, top), top, "generic")
    assert r.flip_flops == flip_flops
    assert r.area_ge > 0
