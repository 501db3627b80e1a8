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
     "e242039d64292b543ebe48c118214af171cc3b0cbf530b68798ce4127be5cf74"),
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
     "36416e64581df35335045f6d355876f55bea1b10397ecb7a462b953d309068e2"),
    ('systolic', {'rows': 3, 'cols': 2, 'pe': 'e4m3_kulisch', 'dataflow': 'ws'},
     "8bc7eff92c418ac88e9304d92f4fc0f6d643a0d8456505ef9c9be18962088d9d"),
    ('systolic', {'pe': 'e4m3_kulisch', 'dataflow': 'os'},
     "6ff65fdc9e132482315cd54122420b0872d3564be6ad0c13c8d9b90db7a48afb"),
    ('systolic', {'rows': 2, 'cols': 2, 'pe': 'overq4', 'dataflow': 'os'},
     "9c9e009e567f97b8096748c10761797dacb6daf2a67365c0fd9c6a5228360f1d"),
    ('systolic', {'rows': 3, 'cols': 5, 'pe': 'uint8xint4_acc24_saturate', 'dataflow': 'is'},
     "7f51f65dacf69fc116327488e5dae9644a1268e9d7a26d42d1fb2d1cd3bb74b8"),
    ('systolic', {'pe': 'overq4', 'dataflow': 'ws'},
     "9ee6f3067e7f6839fce81821176102837a445696f573f995b36a76897817bea1"),
    ('systolic', {'pe': 'e4m3_bf16_two_roundings_ftz_sat', 'dataflow': 'is'},
     "4813f58b156b44a85e6f735982dcea1b3fa3a996fd18ad99a19b0be34eb30f7d"),
    ('systolic', {'rows': 8, 'cols': 8},
     "16bd762c05f2fe9cfdaa2f2ce69877f660b9a1fc369fec6808bd7ffd6276a230"),
]


@pytest.mark.parametrize("unit, params, digest", PINS,
                         ids=[f"{u}-{i}" for i, (u, _, _) in enumerate(PINS)])
def test_verilog_pinned(unit, params, digest):
    component, _ = catalog.get_unit(unit).build(**params)
    text = manifest.to_verilog(component, unit.replace("-", "_"))
    assert hashlib.sha256(text.encode()).hexdigest() == digest
