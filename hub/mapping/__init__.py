"""Declarative mappings: native records <-> canonical records, compiled once (no eval, no I/O
except reading mapping files).

    spec = load_mapping("hubspot/contact")          # or a Path; MappingError lists problems
    mapping = compile_mapping(spec)
    rec = mapping.inbound(native, refs)              # Inbound(external_id, data, ...)
    native = mapping.outbound(rec.data, refs)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hub.mapping.engine import (
    CompiledMapping,
    Inbound,
    compile_mapping,
    reference_namespace,
    split_namespace,
)
from hub.mapping.loader import find_default, load_mapping, parse_mapping
from hub.mapping.paths import MISSING
from hub.mapping.spec import FieldSpec, MappingSpec

__all__ = [
    "MISSING",
    "CompiledMapping",
    "FieldSpec",
    "Inbound",
    "MappingSpec",
    "compile_mapping",
    "find_default",
    "load_mapping",
    "parse_mapping",
    "preview",
    "reference_namespace",
    "split_namespace",
]


class _EchoRefs(Mapping[tuple[str, str], str]):
    """References resolve to themselves, so a preview shows the ids it found."""

    def __getitem__(self, key: tuple[str, str]) -> str:
        return key[1]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(())

    def __len__(self) -> int:
        return 0


def preview(mapping: CompiledMapping | MappingSpec | str | Path,
            native: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(canonical data, native written back from it) for one native record; ids kept as is."""
    if isinstance(mapping, (str, Path)):
        mapping = load_mapping(mapping)
    if isinstance(mapping, MappingSpec):
        mapping = compile_mapping(mapping)
    refs = _EchoRefs()
    canonical = mapping.inbound(native, refs).data
    return canonical, mapping.outbound(canonical, refs)
