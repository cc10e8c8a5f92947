"""What OpenSearch 2.19 indexes for a `flat_object` field, and when Lucene refuses the document.

A model of opensearch-project/OpenSearch 2.19's
server/src/main/java/org/opensearch/index/mapper/FlatObjectFieldMapper.java (the single-pass
parser of #16297 and the doc values of #16802 and #16974, all in the 2.19.0 release notes; the
2.19.1 to 2.19.5 notes list no later change to it):

- parseCreateField: a value that is not an object is a ParsingException ("unexpected token
  ... in flat_object field value"): the document is refused.
- parseToken: each key of a nested object is pushed onto the path (which starts with the
  field's own name); array elements are parsed with the path unchanged; a scalar leaf (string,
  number, boolean: parser.textOrNull()) is skipped when null or longer than `ignoreAbove`,
  which is Integer.MAX_VALUE (the 2.19 mapper reads no mapping parameters: its TypeParser
  takes none, so neither `ignore_above` nor any other can be set), else indexed as
    <field>._value          term  <value>
    <field>._valueAndPath   term  <path>=<value>
    <field>._value          doc value  <field>.<value>
    <field>._valueAndPath   doc value  <field>.<path>=<value>
  and each part of the leaf's path below the field becomes a term and doc value of the field
  itself, <field>.<part> (createPathFields).
- Lucene 9.12 (2.19's) refuses a document holding a term longer than IndexWriter.MAX_TERM_LENGTH
  (32,766 bytes of UTF-8: IndexingChain, "Document contains at least one immense term") or a
  sorted-set doc value longer than the same (SortedSetDocValuesWriter.addValue, "DocValuesField
  ... is too large, must be <= 32766"); OpenSearch answers that bulk item with a 400.
"""

from __future__ import annotations

import json
from typing import Any

LUCENE_MAX_TERM_BYTES = 32766


class Refused(Exception):
    """OpenSearch would answer the document's bulk item with an error."""


def _text(value: Any) -> str:
    """What the JSON parser's textOrNull gives for a scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def indexed(field: str, value: Any) -> list[tuple[str, str]]:
    """Every (Lucene field, term or doc value) the flat_object `field` makes of `value`."""
    if not isinstance(value, dict):
        raise Refused(f"[{field}] unexpected token in flat_object field value")
    out: list[tuple[str, str]] = []
    parts: set[str] = set()

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, [*path, key])
        elif isinstance(node, list):
            for child in node:
                walk(child, path)
        elif node is not None:
            leaf = ".".join(path)
            text = _text(node)
            out.extend(
                [
                    (f"{field}._value", text),
                    (f"{field}._valueAndPath", f"{leaf}={text}"),
                    (f"{field}._value", f"{field}.{text}"),
                    (f"{field}._valueAndPath", f"{field}.{leaf}={text}"),
                ]
            )
            parts.update(leaf[len(field) + 1 :].split("."))

    walk(value, [field])
    out.extend((field, f"{field}.{part}") for part in sorted(parts))
    return out


def index(field: str, value: Any) -> list[tuple[str, str]]:
    """What `indexed` gives, or Refused where Lucene refuses one of them."""
    terms = indexed(field, value)
    for lucene_field, term in terms:
        size = len(term.encode())
        if size > LUCENE_MAX_TERM_BYTES:
            raise Refused(
                f"immense term in field={lucene_field} ({size} bytes > {LUCENE_MAX_TERM_BYTES})"
            )
    return terms
