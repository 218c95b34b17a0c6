"""Progress of independent units: a bar on a terminal, and a log line per finished unit.

The bar (tqdm, on stderr) only shows on a terminal; the log line (INFO, shown with ``-v``) also
reaches batch jobs and redirected output, with the elapsed time and an estimate of what is left.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from tqdm import tqdm

__all__ = ["UnitProgress", "format_seconds"]

log = logging.getLogger(__name__)


def format_seconds(seconds: float) -> str:
    """A duration as 42 s, 3.5 min or 1.2 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class UnitProgress:
    """Count finished units out of `total`: update the bar and log elapsed time and time left."""

    def __init__(self, total: int, desc: str = "units", show: bool | None = None) -> None:
        self.total, self.desc = total, desc
        disable = not sys.stderr.isatty() if show is None else not show
        self._bar = tqdm(total=total, desc=desc, disable=disable, file=sys.stderr, leave=False)
        self._start = time.perf_counter()
        self.done = 0

    def update(self, n: int = 1) -> None:
        """Record `n` more finished units."""
        self.done += n
        self._bar.update(n)
        elapsed = time.perf_counter() - self._start
        left = elapsed / self.done * (self.total - self.done)
        log.info(
            "%s: %d of %d finished, %s elapsed, about %s left",
            self.desc,
            self.done,
            self.total,
            format_seconds(elapsed),
            format_seconds(left),
        )

    def __enter__(self) -> UnitProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bar.close()
