"""`prover verify --batch FILE.jsonl`: the batch endpoint's work on a local Lean pool, for
scoring thousands of proofs without running a server.

Results are written one JSONL line per item as each finishes (each with its `id`), flushed at
once, so an interrupted run loses nothing it finished; run it again with the same `--out` and the
items whose ids are already there are skipped.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from prover.config import Settings
from prover.lean import LeanPool, PoolClosed, StatementError
from prover.verify_items import Item, ItemError, check_each, duplicate_ids, parse_item, result_json


class BatchFileError(Exception):
    """The batch file as a whole cannot be used (unreadable, ids repeated)."""


def read_items(path: str, max_timeout: float) -> tuple[list[Item], list[ItemError]]:
    """The items of a JSONL file (`-`: standard input); a line that is not JSON is an item
    error of its own, like any malformed item."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchFileError(f"cannot read the batch file {path}: {exc}") from exc
    raws: list[Any] = []
    unreadable: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raws.append(json.loads(line))
        except json.JSONDecodeError as exc:
            unreadable[len(raws)] = f"line {number} is not JSON: {exc}"
            raws.append(None)
    repeated = duplicate_ids(raws)
    if repeated:
        shown = ", ".join(repr(r) for r in repeated[:5])
        raise BatchFileError(f"{path}: ids must be unique; repeated: {shown}")
    items: list[Item] = []
    bad: list[ItemError] = []
    for index, raw in enumerate(raws):
        if index in unreadable:
            bad.append(ItemError(index, None, "invalid_request", unreadable[index]))
            continue
        parsed = parse_item(index, raw, max_timeout)
        if isinstance(parsed, Item):
            items.append(parsed)
        else:
            bad.append(parsed)
    return items, bad


def _error_key(message: str) -> str:
    """What identifies an item error without an id (a line that is not JSON): its message,
    which names the line."""
    return "error: " + message


def finished_ids(out: Path) -> set[str]:
    """Ids with a result in `out` already (as JSON text, so 1 and "1" stay apart), and the
    errors of items without an id, so that a rerun does not write them again."""
    if not out.is_file():
        return set()
    done = set()
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by an interruption: that item runs again
        if isinstance(result, dict) and result.get("id") is not None:
            done.add(json.dumps(result["id"]))
        elif isinstance(result, dict) and isinstance(result.get("error"), dict):
            done.add(_error_key(str(result["error"].get("message"))))
    return done


async def verify_batch(path: str, out: str | None, settings: Settings) -> Counter[str]:
    """Check every item of `path`, writing results to `out` (appending) or standard output.
    Returns the count of each verdict (`invalid` for items that could not be checked)."""
    items, bad = read_items(path, settings.lean_timeout)
    target = Path(out) if out else None
    done = finished_ids(target) if target else set()
    items = [i for i in items if json.dumps(i.id) not in done]
    bad = [b for b in bad if (_error_key(b.message) if b.id is None else json.dumps(b.id))
           not in done]
    counts: Counter[str] = Counter()
    sink: IO[str] = target.open("a", encoding="utf-8") if target else sys.stdout
    bar = tqdm(total=len(items) + len(bad), unit="proof", file=sys.stderr, disable=None,
               desc="verify", dynamic_ncols=True)

    def write(result: dict[str, Any]) -> None:
        sink.write(json.dumps(result, ensure_ascii=False) + "\n")
        sink.flush()
        counts[result.get("verdict") or "invalid"] += 1
        bar.update(1)
        bar.set_postfix(proved=counts["proved"], refresh=False)

    try:
        for error in bad:
            write(error.to_json())
        if items:
            async with LeanPool(settings) as pool:

                async def check(item: Item) -> dict[str, Any]:
                    try:
                        return result_json(item.id, await pool.check(item.request))
                    except (StatementError, PoolClosed) as exc:
                        return ItemError(item.index, item.id, "invalid_request",
                                         str(exc)).to_json()

                await check_each(items, settings.verify_slots, check,
                                 lambda _index, result: write(result))
    finally:
        bar.close()
        if target:
            sink.close()
    if done:
        print(f"prover verify: skipped {len(done)} items already in {out}", file=sys.stderr)
    return counts
