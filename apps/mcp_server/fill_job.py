"""The `fill` job kind: `fill_sorries` of the MCP endpoint run on a `prover worker`.

The API process holds no model (see server/complete.py for why), so a fill asked of `/mcp` is
queued like a proof search and run by a worker on its own model and Lean pool; the worker gets
the file's text and returns the filled text with the outcome of each `sorry`. Files are read and
written on the MCP side only, never by a worker. `prover worker` registers this kind (the server
package does not import applications).
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from prover.fill import Filler, FillError, FillOptions, FillReport, sorries
from prover.prompts import PromptMode
from search import SearchConfig

KIND = "fill"


def fill_options(request: dict[str, Any], model_prompt: str) -> FillOptions:
    """The options of a fill request (`search`, `budget`, `concurrency`, `seed`)."""
    return FillOptions(
        search=SearchConfig(algorithm=request.get("search") or "rmaxts",
                            budget=int(request.get("budget") or 32),
                            concurrency=int(request.get("concurrency") or 8),
                            seed=int(request.get("seed") or 0)),
        mode=cast(PromptMode, model_prompt))


def report_json(report: FillReport) -> dict[str, Any]:
    """What a fill answers with: the new text and each sorry's outcome."""
    return {"text": report.text, "changed": report.changed, "time_s": round(report.time_s, 3),
            "outcomes": [dataclasses.asdict(o) for o in report.outcomes]}


async def fill_job(ctx: Any) -> dict[str, Any]:
    from server.worker import JobError

    request = ctx.job.request
    text = str(request["text"])
    total = len(sorries(text))
    done = 0

    def progress(note: str) -> None:
        nonlocal done
        done += 1
        ctx.report_progress(samples=done, budget=total, tree_size=0, note=note)

    filler = Filler(ctx.runtime.generator, ctx.runtime.pool,
                    fill_options(request, ctx.settings.model_prompt), ctx.settings,
                    progress=progress)
    try:
        report = await filler.fill(text)
    except FillError as exc:
        raise JobError(str(exc)) from None
    return report_json(report)


def register() -> None:
    from server.worker import register_handler

    register_handler(KIND, fill_job)
