"""The facts with one owner: the ONNX contract (chromaformer.contract) against
export/CONTRACT.md and real exports; the layout module; the C++ stubs against _core."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import onnx
import pytest

from chromaformer import _core, contract, layout

CONTRACT_MD = Path(__file__).resolve().parents[1] / "export" / "CONTRACT.md"
STUB = Path(contract.__file__).with_name("_core.pyi")


def _named_in_md() -> set[str]:
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_{}]*)`", CONTRACT_MD.read_text()))


def test_contract_md_names_every_key_and_tensor():
    named = _named_in_md()
    keys = set(
        contract.COMMON_KEYS
        + contract.BINS_KEYS
        + contract.CHROMOFORMER_KEYS
        + contract.VARIANT_KEYS
        + contract.ENSEMBLE_KEYS
    )
    tensors = (
        set(contract.BINS_OUTPUTS)
        | {contract.BINS_INPUT}
        | {n for outs in contract.CHROMOFORMER_OUTPUTS.values() for n in outs}
    )
    tensors |= {"promoter_{r}", "pcre_{r}", "pcre_lengths", "pcre_scores"}
    missing = sorted((keys | tensors) - named)
    assert not missing, f"export/CONTRACT.md does not document {missing}"
    for k in contract.CARD_KEYS:
        assert f'"{k}"' in CONTRACT_MD.read_text(), k


def _meta(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_bin_exports_carry_exactly_the_contract_keys(exported):
    for report, _, _ in exported.values():
        assert set(_meta(report.path)) == set(contract.metadata_keys("bins"))
        card = contract.read_card(report.path)
        assert set(card) == set(contract.CARD_KEYS)
        info = contract.ModelInfo.from_metadata(str(report.path), _meta(report.path))
        assert info.family == "bins" and info.inputs == (contract.BINS_INPUT,)


def test_chromoformer_exports_carry_exactly_the_contract_keys(cf_runs):
    for task in contract.TASKS:
        meta = _meta(cf_runs / f"{task}.onnx")
        assert set(meta) == set(contract.metadata_keys("chromoformer"))
        info = contract.ModelInfo.from_metadata("m", meta)
        assert info.outputs == contract.CHROMOFORMER_OUTPUTS[task]
        assert list(info.inputs) == contract.chromoformer_input_names(info.bin_sizes, task)
        assert info.primary_output == contract.PRIMARY_OUTPUT[task]


def test_read_card_errors_name_the_file(tmp_path):
    bad = tmp_path / "m.model.json"
    bad.write_text("{\n  oops")
    with pytest.raises(contract.DataError, match=r"m\.model\.json:2: not JSON"):
        contract.read_card(tmp_path / "m.onnx")
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(contract.DataError, match="expected a model card"):
        contract.read_card(bad)


def test_region_names_build_and_parse_one_way():
    name = layout.region_name("chr2", 100, 5000)
    assert name == "chr2:100-5000" and layout.parse_region(name) == ("chr2", 100, 5000)
    assert layout.promoter_region("chrX", 30000) == "chrX:10000-50000"
    for bad in ("chr2:100", "chr2-100-200", "chr2:a-b", ""):
        with pytest.raises(ValueError, match="chrom:start-end"):
            layout.parse_region(bad)
    folds = layout.assign_folds(["c1"] * 5 + ["c2"] * 3 + ["c3"] * 3 + ["c4"])
    assert folds == {"c1": 1, "c2": 2, "c3": 3, "c4": 4}


def test_core_stub_matches_the_extension():
    text = STUB.read_text()
    stubbed = set(re.findall(r"^(?:def|class) (\w+)", text, flags=re.M))
    public = {n for n in dir(_core) if not n.startswith("_")}
    assert {n for n in stubbed if not n.startswith("_")} == public
    assert all(hasattr(_core, n) for n in stubbed)  # private knobs (_set_sizes) too
    for name in public - {"BatchReader"}:
        doc = inspect.getdoc(getattr(_core, name)) or ""
        params = re.findall(r"(\w+): ", doc.splitlines()[0]) if doc else []
        stub_sig = re.search(rf"def {name}\((.*?)\) ->", text, flags=re.S).group(1)
        for p in params:
            assert re.search(rf"\b{p}\b", stub_sig), (name, p)


def test_numeric_metadata_that_is_not_a_number_is_a_one_line_error():
    from chromaformer.errors import DataError

    meta = {
        "family": "bins",
        "architecture": "cnn",
        "marks": "a,b",
        "outputs": "probability",
        "bins": "100",
        "bin_size": "100",
    }
    assert contract.ModelInfo.from_metadata("m.onnx", meta).bins == 100
    for key, value in (("bins", "abc"), ("bin_size", "-5"), ("window", "1e9")):
        with pytest.raises(DataError, match=rf"^m\.onnx: metadata {key}="):
            contract.ModelInfo.from_metadata("m.onnx", {**meta, key: value})
