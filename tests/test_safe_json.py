"""export_format.safe_json: bounded JSON parsing for every file reader."""

from __future__ import annotations

import json

import pytest

from export_format import safe_json


def test_parses_plain_documents_and_ignores_brackets_inside_strings():
    text = json.dumps({"a": [1, {"b": '[[[[{{{{ \\" ]]'}], "c": None})
    assert safe_json.loads(text, source="doc.json") == json.loads(text)
    assert safe_json.nesting_depth(text.encode()) == 3


@pytest.mark.parametrize("depth", [65, 5_000, 200_000])
def test_deep_nesting_is_a_one_line_error_not_a_recursion_error(depth):
    with pytest.raises(safe_json.JsonLimitError, match=rf"deep\.json nests {depth} levels deep \(at most 64\)"):
        safe_json.loads("[" * depth + "]" * depth, source="deep.json")


def test_size_bound_and_invalid_json(tmp_path):
    with pytest.raises(safe_json.JsonLimitError, match="more than the 10 this file can be"):
        safe_json.loads('{"key": "a long value"}', source="big.json", max_bytes=10)
    path = tmp_path / "broken.json"
    path.write_text('{"a": ', encoding="utf-8")
    with pytest.raises(safe_json.JsonLimitError, match="broken.json is not valid JSON") as error:
        safe_json.load(path)
    assert "\n" not in str(error.value)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(safe_json.JsonLimitError, match="not valid JSON"):
        safe_json.load(path)


def test_load_checks_the_size_before_reading(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text("[" + "0," * 1000 + "0]", encoding="utf-8")
    with pytest.raises(safe_json.JsonLimitError, match="huge.json is 2,003 bytes, more than the 100"):
        safe_json.load(path, max_bytes=100)
    with pytest.raises(FileNotFoundError):
        safe_json.load(tmp_path / "missing.json")
    with pytest.raises(safe_json.JsonLimitError, match="is a folder"):
        safe_json.load(tmp_path)
