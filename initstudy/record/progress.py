"""Progress bars on stderr (tqdm), one kind for every long command: done, elapsed, ETA.

On a terminal the bar redraws in place; shown only once a command has run `delay` seconds, so a
short run prints nothing. When stderr is not a terminal (a log file, CI, a test's pipe) there is no
bar, only a plain line at long intervals. A bar only watches: what a run records is unchanged.
"""
import sys

LOG_INTERVAL = 60.0  # s between lines when stderr is not a terminal
DELAY = 3.0  # s before a run's steps bar appears: a short run shows none


class _Lines:
    """A file for tqdm that turns its in-place redraws into whole lines (for logs)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, s):
        s = s.strip("\r\n")
        if s.strip():
            self.stream.write(s + "\n")

    def flush(self):
        self.stream.flush()


def bar(total: int, desc: str, unit: str = "it", delay: float = 0.0):
    """A tqdm bar for `total` units, on stderr; close it (or use `with`)."""
    from tqdm import tqdm

    # no monitor thread: the bar is made before the engine forks its workers (run/engine.FORK), and a
    # thread of ours there would be one more to copy
    tqdm.monitor_interval = 0
    tty = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr if tty else _Lines(sys.stderr),
                delay=delay if tty else max(delay, LOG_INTERVAL), mininterval=0.2 if tty else LOG_INTERVAL,
                maxinterval=LOG_INTERVAL, dynamic_ncols=True, leave=tty,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]"
                if tty else "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]")
