"""A progress bar on stderr, the way Keras' predict draws one."""
from __future__ import annotations

import sys

WIDTH = 30


class Progress:
    """`label [####....] done/total`, redrawn in place; with no known total, a count."""

    def __init__(self, label: str, total: int | None, enabled: bool) -> None:
        self.label, self.total, self.enabled, self.done = label, total, enabled, 0

    def step(self, count: int = 1) -> None:
        self.done += count
        if not self.enabled:
            return
        if self.total:
            filled = WIDTH * min(self.done, self.total) // self.total
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {self.done}/{self.total}")
        else:
            sys.stderr.write(f"\r{self.label}: {self.done}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")
            sys.stderr.flush()
