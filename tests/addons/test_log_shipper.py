"""The log shipper's Lua filter keeps every record indexable: a record with a string too long for
OpenSearch's flat_object is no longer refused (nor, after the output's retries, the chunk of good
records it came in), and nothing of it is lost.

The filter runs on a real LuaJIT as Fluent Bit 5.1.1 calls it (tests/addons/fluent_bit_lua.py);
what OpenSearch 2.19 then indexes, and when Lucene refuses it, is modelled from the source
(tests/data/flat_object.py). Why it matters: Fluent Bit 5.1.1's opensearch output retries the
whole chunk when any bulk item fails (plugins/out_opensearch/opensearch.c,
opensearch_error_check: any item status but 409 -> FLB_RETRY) and drops it after Retry_Limit.
Such records happen: containerd splits a container's output into 16 KiB lines and the tail
input's `cri` multiline parser joins them again (src/multiline/flb_ml_parser_cri.c: partial
`P` lines up to the `F` one), so a JSON log line with a 40 KB stack trace reaches the
kubernetes filter whole and is merged under `fields`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.addons.log_shipper import (
    LUCENE_MAX_TERM_BYTES,
    TERM_LIMIT_FUNCTION,
    TERM_LIMIT_SCRIPT,
)
from components.data.search_access import LOG_FIELDS_KEY, LOG_UNINDEXED_KEY
from offline.engine import StackRun
from tests.addons.fluent_bit_lua import run_filter
from tests.data.flat_object import LUCENE_MAX_TERM_BYTES as LUCENE_LIMIT
from tests.data.flat_object import Refused, index
from tests.lookup import helm_release

# The fixed part of the longest term of a leaf: "fields." + "fields." + <key path> + "=".
OVERHEAD = 2 * (len(LOG_FIELDS_KEY) + 1) + 1


def deployed_script(run: StackRun) -> str:
    values = helm_release(run, "fluent-bit").inputs["values"]
    script: str = values["luaScripts"][TERM_LIMIT_SCRIPT.name]
    return script


def filter_sections(run: StackRun) -> list[dict[str, str]]:
    text = helm_release(run, "fluent-bit").inputs["values"]["config"]["filters"]
    sections: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.strip() == "[FILTER]":
            sections.append({})
        elif line.strip():
            key, value = line.split(None, 1)
            sections[-1][key] = value
    return sections


def record(fields: Any) -> dict[str, Any]:
    """A record as the kubernetes filter passes it on: the cri parser's keys, the pod's
    metadata, and the log line's JSON under Merge_Log_Key (Keep_Log Off: no `log`)."""
    return {
        "time": "2026-12-03T10:00:00.000000000Z",
        "stream": "stderr",
        "_p": "F",
        "kubernetes": {
            "pod_name": "user-service-7d9f8b6c5-x2k4q",
            "namespace_name": "financial-planning",
            "container_name": "user-service",
            "labels": {"app.kubernetes.io/name": "user-service"},
        },
        LOG_FIELDS_KEY: fields,
    }


def shipped(run: StackRun, given: dict[str, Any]) -> dict[str, Any]:
    """The record the output sends, as JSON (what OpenSearch parses)."""
    code, out = run_filter(deployed_script(run), TERM_LIMIT_FUNCTION, given)
    assert code in (0, 2), code
    parsed: dict[str, Any] = json.loads(json.dumps(out))
    return parsed


def test_the_filter_runs_after_the_merge_with_nulls_kept(stack_run: StackRun) -> None:
    kubernetes, lua = filter_sections(stack_run)
    assert kubernetes["Name"] == "kubernetes"
    assert kubernetes["Merge_Log_Key"] == LOG_FIELDS_KEY
    assert lua["Name"] == "lua"
    assert lua["Match"] == kubernetes["Match"]
    # The chart mounts luaScripts at /fluent-bit/scripts (fluent-bit 0.58.1 _pod.tpl).
    assert lua["script"] == f"/fluent-bit/scripts/{TERM_LIMIT_SCRIPT.name}"
    assert lua["call"] == TERM_LIMIT_FUNCTION
    assert lua["enable_flb_null"] == "On"
    assert LUCENE_MAX_TERM_BYTES == LUCENE_LIMIT
    assert f"local MAX_TERM_BYTES = {LUCENE_LIMIT}" in deployed_script(stack_run)


def test_a_long_stack_trace_is_no_longer_refused_and_is_kept_whole(
    production: StackRun,
) -> None:
    trace = "java.lang.IllegalStateException: boom\n" + "\tat com.example.Service.call\n" * 1500
    assert len(trace.encode()) > 40_000
    given = record({"level": "error", "error": {"message": "boom", "stack": trace}})
    # Negative control: as Merge_Log alone ships it, OpenSearch refuses it.
    with pytest.raises(Refused, match="immense term"):
        index(LOG_FIELDS_KEY, given[LOG_FIELDS_KEY])
    out = shipped(production, given)
    index(LOG_FIELDS_KEY, out[LOG_FIELDS_KEY])
    # The indexed prefix is as long as fits; the whole text stays in the document.
    prefix = out[LOG_FIELDS_KEY]["error"]["stack"]
    assert trace.startswith(prefix)
    assert len(prefix) == LUCENE_LIMIT - OVERHEAD - len("error.stack")
    assert out[LOG_UNINDEXED_KEY] == {"error.stack": [trace]}
    # Everything else is as it came.
    assert out[LOG_FIELDS_KEY]["level"] == "error"
    assert out[LOG_FIELDS_KEY]["error"]["message"] == "boom"
    assert out["kubernetes"] == given["kubernetes"]


@pytest.mark.parametrize("extra", [0, 1])
def test_the_limit_is_lucenes_to_the_byte(production: StackRun, extra: int) -> None:
    """A value whose longest term is exactly 32,766 bytes passes untouched (code 0); one byte
    more and the model refuses it and the filter cuts it."""
    key = "detail"
    value = "x" * (LUCENE_LIMIT - OVERHEAD - len(key) + extra)
    given = record({key: value})
    code, out = run_filter(deployed_script(production), TERM_LIMIT_FUNCTION, given)
    if extra == 0:
        index(LOG_FIELDS_KEY, given[LOG_FIELDS_KEY])
        assert code == 0
    else:
        with pytest.raises(Refused):
            index(LOG_FIELDS_KEY, given[LOG_FIELDS_KEY])
        assert code == 2
        index(LOG_FIELDS_KEY, out[LOG_FIELDS_KEY])
        assert out[LOG_UNINDEXED_KEY] == {key: [value]}


def test_a_cut_never_splits_a_character(production: StackRun) -> None:
    """Lucene counts UTF-8 bytes: a long text of three-byte characters is cut to whole ones."""
    value = "€" * 12_000
    given = record({"note": value})
    with pytest.raises(Refused):
        index(LOG_FIELDS_KEY, given[LOG_FIELDS_KEY])
    out = shipped(production, given)
    prefix = out[LOG_FIELDS_KEY]["note"]
    assert set(prefix) == {"€"}
    room = LUCENE_LIMIT - OVERHEAD - len("note")
    assert room - 3 < len(prefix.encode()) <= room
    index(LOG_FIELDS_KEY, out[LOG_FIELDS_KEY])


def test_arrays_nulls_numbers_and_empty_maps_survive_a_rebuilt_record(
    production: StackRun,
) -> None:
    long = "y" * 40_000
    fields = {
        "items": [{"trace": long}, {"trace": "short"}, long],
        "count": 3,
        "ratio": 0.25,
        "ok": False,
        "missing": None,
        "empty": {},
        "none": [],
    }
    given = record(fields)
    with pytest.raises(Refused):
        index(LOG_FIELDS_KEY, given[LOG_FIELDS_KEY])
    out = shipped(production, given)
    shipped_fields = out[LOG_FIELDS_KEY]
    index(LOG_FIELDS_KEY, shipped_fields)
    # Array elements add nothing to the path: both long strings are under "items.trace" and
    # "items" (in the order the filter met them, which Lua's traversal of a map does not fix).
    assert sorted(out[LOG_UNINDEXED_KEY]) == ["items", "items.trace"]
    assert out[LOG_UNINDEXED_KEY]["items.trace"] == [long]
    assert out[LOG_UNINDEXED_KEY]["items"] == [long]
    assert shipped_fields["items"][1] == {"trace": "short"}
    assert len(shipped_fields["items"]) == 3
    scalars = (shipped_fields["count"], shipped_fields["ratio"], shipped_fields["ok"])
    assert scalars == (3, 0.25, False)
    assert shipped_fields["missing"] is None
    # An empty map stays a map (a flat_object's nested `[]` or `{}` indexes nothing either
    # way, but the record's shape is the service's).
    assert shipped_fields["empty"] == {} and shipped_fields["none"] == []


def test_a_key_path_too_long_for_any_value_leaves_a_null(production: StackRun) -> None:
    key = "k" * LUCENE_LIMIT
    given = record({key: "v", "fine": "w"})
    with pytest.raises(Refused):
        index(LOG_FIELDS_KEY, given[LOG_FIELDS_KEY])
    out = shipped(production, given)
    assert out[LOG_FIELDS_KEY] == {key: None, "fine": "w"}
    assert out[LOG_UNINDEXED_KEY] == {key: ["v"]}
    index(LOG_FIELDS_KEY, out[LOG_FIELDS_KEY])


def test_records_without_merged_json_or_long_strings_pass_untouched(production: StackRun) -> None:
    script = deployed_script(production)
    plain = record("not merged")
    del plain[LOG_FIELDS_KEY]
    plain["log"] = "a plain text line\n" * 5000
    assert run_filter(script, TERM_LIMIT_FUNCTION, plain)[0] == 0
    assert run_filter(script, TERM_LIMIT_FUNCTION, record({"a": {"b": [1, "two"]}}))[0] == 0


def test_the_model_refuses_what_opensearch_refuses() -> None:
    """Negative controls of the model itself (FlatObjectFieldMapper 2.19): not an object, and a
    term one byte over Lucene's limit in each of the places it can be."""
    with pytest.raises(Refused, match="unexpected token"):
        index(LOG_FIELDS_KEY, [])
    index(LOG_FIELDS_KEY, {"a": "x" * (LUCENE_LIMIT - OVERHEAD - 1)})
    with pytest.raises(Refused, match="_valueAndPath"):
        index(LOG_FIELDS_KEY, {"a": "x" * (LUCENE_LIMIT - OVERHEAD)})
    # A key: its path part is a term of the field itself, "fields.<key>".
    with pytest.raises(Refused):
        index(LOG_FIELDS_KEY, {"k" * LUCENE_LIMIT: 1})
    # A null leaf is skipped: its key makes no term.
    index(LOG_FIELDS_KEY, {"k" * LUCENE_LIMIT: None})
