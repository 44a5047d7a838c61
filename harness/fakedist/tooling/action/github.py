"""GitHub Actions workflow commands and files: annotations, outputs, the job summary."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "annotation",
    "append_file",
    "error_line",
    "escape_data",
    "escape_property",
    "outputs_text",
]


def escape_data(text: str) -> str:
    """Escape a workflow-command message (``%``, CR, LF), as the runner's toolkit does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow-command property value (also ``:`` and ``,``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_line(message: str) -> str:
    """``::error::message``, always a single line."""
    return f"::error::{escape_data(message)}"


def annotation(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    title: str | None = None,
) -> str:
    """``::error file=…,line=…,title=…::message`` (properties that are None are left out)."""
    props = [
        f"{key}={escape_property(str(value))}"
        for key, value in (("file", file), ("line", line), ("title", title))
        if value is not None
    ]
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{escape_data(message)}"


def outputs_text(values: Mapping[str, str]) -> str:
    """``$GITHUB_OUTPUT`` content; multi-line values use a random heredoc delimiter."""
    chunks = []
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
            chunks.append(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            chunks.append(f"{key}={value}\n")
    return "".join(chunks)


def append_file(path: str | None, text: str) -> None:
    """Append to a runner file (``$GITHUB_OUTPUT``, ``$GITHUB_STEP_SUMMARY``) when it is set."""
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(text)
