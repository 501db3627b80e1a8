# amaranth: UnusedElaboratable=no
"""The Verilog of catalogue units is pinned by its sha256.

Recorded before the one-way architecture change (issue 13) moved any code, so that a move
that changes a generated circuit shows up here. A pin may only change together with the
generator it pins, and the commit that changes it says why (a circuit change) and how the
new circuit was shown to behave as the old one did.

History: the ``systolic`` pins changed once, when the array became ``R x C`` instances of one
:class:`lowbit.hdl.systolic.SystolicPE` (the PE's registers moved from the array into the PE
module; the Verilog gained a module per PE). Every other pin is the Verilog recorded before
the change. The old and new array Verilog of every pinned ``systolic`` configuration were run
side by side under Verilator for 20,000 cycles each with uniformly random values on every
input port every cycle (back-pressure, invalid beats, random load/last bits included): every
output equal on every cycle.

They changed a second time (issue 16, generation at scale) when the array became ``R``
instances of one :class:`lowbit.hdl.systolic.SystolicRow` of ``C`` PEs (a two-level
hierarchy) and its skew lines one shift register per lane: the PE module is unchanged.
``python benchmarks/verilog_equivalence.py --old <the revision before>`` ran the old and
new Verilog of every pinned ``systolic`` configuration side by side under Verilator for
20,000 cycles with uniformly random values on every input port every cycle and a random
extra reset: every output equal on every cycle.
"""

import hashlib

import pytest

from lowbit.hdl import catalog, manifest

#: (unit, parameters, sha256 of ``manifest.to_verilog(component, unit with "_")``)
PINS = [
    ('int-mac', {},
     "92e01749a9ab4886e0b9348c45a62dd02c2a130baa593758cc5b46551c900f6c"),
    ('fp-mul', {},
     "5e1a3419815421579d45e63460d7bfcf6645851dc7fbb9f5ff69f8adf1a638bd"),
    ('fp-mac', {},
     "a3f760b99f16b6b2b77089d216c9639ba9ed124305e8405ff4ea335ee5b7a176"),
    ('shared-exp-adder', {},
     "85d44cd81e91ecc94e0defcb9dc3bc739adc8602495d910b1d59196fdcf52f66"),
    ('mx-dot', {},
     "e9770c831bbdd2019466e7c65b6e20ff8b2e3d4d8cbd609c5d1e0741ca114cf2"),
    ('bfp-adder', {},
     "d0bd57759bd00e075536be37addcb4590f9dd979a9a31e7e979c474a12515c07"),
    ('overq-pe', {},
     "49becc95bc0a2510b3ef222fc00101715e0a187742626ca029a392301517f0be"),
    ('int-pe', {},
     "2bcddcf401308d685974f91ad4d850c3b7f451cd36733bd74a1c5c5178c3dbb7"),
    ('systolic', {},
     "db5fa69d594002d73409822d934c7e7db20084573f805759b7dfd5811e1cceec"),
    ('int-mac', {'pipeline_stages': 1, 'a_format': 'uint8', 'b_format': 'int4', 'acc_bits': 20, 'overflow': 'saturate'},
     "94a0d513c258d717db8c819785f07f154d23eaaffd5649784a6b6af7f5951b86"),
    ('int-mac', {'pipeline_stages': 3},
     "ada46e033ff24c673e7a3599010d780e716fce5eb8c4ab2c9c48f7eadef99872"),
    ('fp-mul', {'a_format': 'e5m2', 'b_format': 'e4m3', 'pipeline_stages': 1, 'flush_subnormals': True},
     "0fe72f617700dd991835a6bddd95df647425bdc2a550eff30bad968b845dd56a"),
    ('fp-mul', {'a_format': 'e2m1', 'b_format': 'e3m2'},
     "6f70382533831f2066b0ac84340fe487d883ce1a1a8479f2c1fa8e76976a098b"),
    ('fp-mac', {'acc_format': 'fp16', 'mode': 'two_roundings', 'saturate': True},
     "b47c20042e0f2892b18fb627631a1639d183b12323cb8d87a4a757e7c4e6f3dd"),
    ('fp-mac', {'acc_format': 'bf16', 'pipeline_stages': 2, 'a_format': 'e5m2'},
     "ae25e6cf7a943895a4d0f13f96587acfbd5b7c6240f2129476664259d3674317"),
    ('fp-mac', {'mode': 'kulisch', 'terms': 256},
     "6d4f57c8e6348ab4159ec657bf48cc8da05d05f3f889d8c472f2f3db3f3e28f5"),
    ('fp-mac', {'mode': 'kulisch', 'pipeline_stages': 11},
     "7ed36c87dfc8cd76214d65e460247335aa615fe0ee877cbbda19ac10d13c3a4e"),
    ('fp-mac', {'mode': 'kulisch', 'pipeline_stages': 5, 'acc_format': 'fp16'},
     "af5f9e1e81d514c7c3a5b1715ba3f6137ab8de9a1fe6a14ca2cb7c24e69bb830"),
    ('shared-exp-adder', {'n': 8, 'align': 'product', 'frac_bits': 13, 'cut': 'floor', 'norm_frac_bits': 13, 'norm_rounding': 'toward_zero'},
     "13ad3c4cab14770af9e8cd00e69c58f1eef1df7a23bb7f4fdb7dd1114b3ef8dc"),
    ('shared-exp-adder', {'a_format': 'int8', 'b_format': 'int8', 'n': 16, 'pipeline_stages': 0},
     "0909180ff4de3c2e4d585997a325898a0dfb200f7f598d5fe10b9912479e6741"),
    ('shared-exp-adder', {'a_format': 'bf16', 'b_format': 'bf16', 'n': 4, 'pipeline_stages': 3, 'acc_in_max': False},
     "a9feda7e9a6a6cbfb31dcef33d0fd1a3f80db64138f2a999c685bc7cdfab4562"),
    ('mx-dot', {'elem': 'mxfp4_e2m1', 'k': 8},
     "a96b4f51c31c29d3ef18cc9b8fed10ddc59aca19e0132e65dd4a726e3c5e5a72"),
    ('mx-dot', {'elem': 'mxint8', 'k': 16, 'pipeline_stages': 0},
     "d1908e05a0232269d346837bb8177cfd3825f275e51ca0e452226e1010a7389e"),
    ('mx-dot', {'elem': 'mxfp6_e3m2', 'b_elem': 'mxfp8_e5m2', 'k': 4, 'cut': 'nearest_even'},
     "70bf64eba43fcf8e2b7e338762f0e8706090b703adc6830a31a4545b00b8270c"),
    ('bfp-adder', {'mantissa': 'int16', 'n': 8},
     "6de28fd50388fa288f101f66efd7c0d065e07d830ab1fb5859711ac1ef3ce4b3"),
    ('overq-pe', {'bits': 8, 'w_bits': 8, 'cascade': 2, 'precision': False, 'shift_at': 'operands'},
     "8aa5e205a81b752276afa44d7330e0a8d8a76cd77e40c1638c4d81a92ff84d0c"),
    ('int-pe', {'bits': 8, 'w_bits': 8, 'acc_bits': 24},
     "caa75d39638d45b0bfe58051b2eca7d7157150eb85c88a5616b9c9170ebbb98a"),
    ('systolic', {'rows': 2, 'cols': 3, 'pe': 'e5m2xe4m3_fp16', 'dataflow': 'os'},
     "38b0eab805b200aea87e325f274ed59126fb314861f813040308fe1d6892f122"),
    ('systolic', {'rows': 3, 'cols': 2, 'pe': 'e4m3_kulisch', 'dataflow': 'ws'},
     "68667a86cd629f77e7b7de432ada6b28d18b258f490995cc503fdf3d5520ab49"),
    ('systolic', {'pe': 'e4m3_kulisch', 'dataflow': 'os'},
     "b68b2e8b58eb58ff01fe1f413e00bb583c960935e90905ee2181cce7f667b345"),
    ('systolic', {'rows': 2, 'cols': 2, 'pe': 'overq4', 'dataflow': 'os'},
     "837508d9920e057dba19a95f7fc4da719fc62d7ca74d79e1f12587d323f73435"),
    ('systolic', {'rows': 3, 'cols': 5, 'pe': 'uint8xint4_acc24_saturate', 'dataflow': 'is'},
     "e288ddd811ecd6e0c73d9065e436d6af4b88f515acc13b03356e8cfd0261dbfc"),
    ('systolic', {'pe': 'overq4', 'dataflow': 'ws'},
     "b761874d7dcf63a02ac1b28f41e21be7f90f07f2aa369789704cacc9ad1eb23f"),
    ('systolic', {'pe': 'e4m3_bf16_two_roundings_ftz_sat', 'dataflow': 'is'},
     "981fcc7f19cb6227654b698910a2a3ad46e5e3b9cb5dfd305d7b97541e9468b4"),
    ('systolic', {'rows': 8, 'cols': 8},
     "d66457c44ca61efab17f30f7688f9c077629a8ee41144ed6f9505a52c8bb7459"),
    # added with the units (issue 17), the Verilog their co-simulation tests passed on
    ('chunked-mac', {},
     "68f4c49643412c330f5c88db4eac47b99e1446cf45ebbd4fa58deb804d865ca4"),
    ('kahan-mac', {},
     "dd2e52b32c5cfe8675e29bfd9cc428acc93ec8b12aad713e61d9f1eefb845154"),
    ('chunked-mac', {'acc_format': 'bf16', 'chunk_length': 4, 'pipeline_stages': 2},
     "4ed2bdf4da7f8b296c3a81b52302b8068d250ef4649d9f9b96238f1f8f786ebf"),
    ('kahan-mac', {'acc_format': 'fp16', 'pipeline_stages': 1},
     "2466fd320c7baf51831c10e7ee7600ab6652d082e2aefa7e095867c84c15aec9"),
]


@pytest.mark.parametrize("unit, params, digest", PINS,
                         ids=[f"{u}-{i}" for i, (u, _, _) in enumerate(PINS)])
def test_verilog_pinned(unit, params, digest):
    component, _ = catalog.get_unit(unit).build(**params)
    text = manifest.to_verilog(component, unit.replace("-", "_"))
    assert hashlib.sha256(text.encode()).hexdigest() == digest
