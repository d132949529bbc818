"""The files ``PredictionTableHook.load_file`` reads, row by row as they are read: CSV, JSON lines, a JSON list.

Bad content raises ``MLSValidationError`` naming the row (``rows[<index>]``) or the cell.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.exceptions import MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping
    from pathlib import Path

_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")


def cell(value: str, kind: str, path: str, line: int) -> Any:
    if kind == "S":
        return value
    try:
        if kind == "N":
            number = Decimal(value.strip())
            if not number.is_finite():
                raise ValueError(value)
            return number
        if kind == "BOOL":
            if value.strip().lower() in _TRUE:
                return True
            if value.strip().lower() in _FALSE:
                return False
            raise ValueError(value)
        return json.loads(value, parse_float=Decimal)
    except (ValueError, InvalidOperation):
        raise MLSValidationError(path, f"line {line}: {value!r} is not {kind}") from None


def csv_rows(path: Path, types: Mapping[str, str]) -> Generator[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        if not header:
            raise MLSValidationError("path", f"{str(path)!r} has no header row")
        if len(set(header)) != len(header):
            raise MLSValidationError("path", f"{str(path)!r} repeats a column in its header: {header}")
        unknown = sorted(set(types) - set(header))
        if unknown:
            raise MLSValidationError(f"column_types.{unknown[0]}", f"no such column in {str(path)!r}")
        for index, record in enumerate(reader):
            if None in record:
                raise MLSValidationError(f"rows[{index}]", f"line {reader.line_num}: more cells than columns")
            row: dict[str, Any] = {}
            for column, value in record.items():
                kind = types.get(column, "S")
                if value is None or (value == "" and kind != "S"):
                    continue  # a missing or empty typed cell: no attribute
                row[column] = cell(value, kind, f"rows[{index}].{column}", reader.line_num)
            yield row


def jsonl_rows(path: Path) -> Generator[Any]:
    with path.open(encoding="utf-8-sig") as handle:
        index = 0
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line, parse_float=Decimal)
            except ValueError as exc:
                raise MLSValidationError(f"rows[{index}]", f"line {number} is not JSON: {exc}") from None
            index += 1


def json_rows(path: Path, chunk_size: int = 1 << 16) -> Generator[Any]:
    """The elements of a JSON list in a file, decoded one by one as the file is read."""
    decoder = json.JSONDecoder(parse_float=Decimal)
    with path.open(encoding="utf-8-sig") as handle:
        buffer, position, done = "", 0, False

        def more() -> bool:
            nonlocal buffer, position, done
            if done:
                return False
            chunk = handle.read(max(chunk_size, len(buffer) - position))  # grows: big elements stay linear
            buffer, position = buffer[position:] + chunk, 0
            done = not chunk
            return bool(chunk)

        def skip_space() -> str:
            """The next non-space character (not consumed), or "" at the end of the file."""
            nonlocal position
            while True:
                while position < len(buffer) and buffer[position].isspace():
                    position += 1
                if position < len(buffer):
                    return buffer[position]
                if not more():
                    return ""

        if skip_space() != "[":
            raise MLSValidationError("path", f"{str(path)!r} is not a JSON list (of objects)")
        position += 1
        index = 0
        if skip_space() == "]":
            return
        while True:
            skip_space()
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, position)
                    break
                except ValueError as exc:
                    if not more():
                        raise MLSValidationError(f"rows[{index}]", f"is not JSON: {exc}") from None
            position = end
            yield value
            index += 1
            separator = skip_space()
            position += 1
            if separator == "]":
                return
            if separator != ",":
                raise MLSValidationError(
                    f"rows[{index}]", f"expected ',' or ']' in the JSON list, got {separator!r}"
                )
