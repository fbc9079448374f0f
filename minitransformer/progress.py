"""A one-line progress bar (iteration, loss, tokens/s, ETA) that becomes plain log lines when
the output is not a terminal (a file, a pipe, CI)."""

from __future__ import annotations

import time


def _clock(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total: int, out, start: int = 0, width: int = 24, lines: int = 20):
        self.total, self.out, self.width = total, out, width
        self.is_terminal = hasattr(out, "isatty") and out.isatty()
        self.every = max(1, min(100, (total - start) // lines))  # plain mode: ~`lines` lines a run
        self.start_iter, self.start_time = start, time.perf_counter()
        self.smoothed_tokens_per_second = None
        self.drawn = False

    def update(self, iteration: int, loss: float, tokens_per_second: float) -> None:
        rate = self.smoothed_tokens_per_second
        self.smoothed_tokens_per_second = tokens_per_second if rate is None else 0.9 * rate + 0.1 * tokens_per_second
        done = iteration - self.start_iter
        elapsed = time.perf_counter() - self.start_time
        eta = elapsed / done * (self.total - iteration) if done else 0.0
        status = (f"iter {iteration}/{self.total} | loss {loss:.4f} | "
                  f"{self.smoothed_tokens_per_second:,.0f} tok/s | ETA {_clock(eta)}")
        if self.is_terminal:
            filled = int(self.width * iteration / self.total)
            bar = "#" * filled + "-" * (self.width - filled)
            self.out.write(f"\r[{bar}] {status}\033[K")
            self.out.flush()
            self.drawn = True
        elif done % self.every == 0 or iteration == self.total:
            print(status, file=self.out, flush=True)

    def note(self, text: str) -> None:
        """A line of its own (an evaluation result), above the bar."""
        if self.drawn:
            self.out.write("\r\033[K")
        print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()
            self.drawn = False
