"""What happened when, in seconds since the run started: printed as it happens and kept for the results."""

import threading
import time
from typing import Any


class Timeline:
    def __init__(self, *, echo: bool = True) -> None:
        self.started = time.monotonic()
        self.wall_started = time.time()
        self.entries: list[dict[str, Any]] = []
        self._echo = echo
        self._lock = threading.Lock()

    def now(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def at(self, monotonic: float) -> float:
        """A monotonic time as seconds since the run started."""
        return round(monotonic - self.started, 2)

    def epoch(self, seconds: float) -> float:
        """Run seconds as epoch seconds (this machine's wall clock)."""
        return self.wall_started + seconds

    def of_epoch(self, epoch: float) -> float:
        """Epoch seconds as run seconds."""
        return round(epoch - self.wall_started, 2)

    def note(self, text: str, at: float | None = None) -> None:
        moment = self.now() if at is None else at
        with self._lock:
            self.entries.append({"time": moment, "event": text})
            if self._echo:
                print(f"[{moment:8.2f}s] {text}", flush=True)
