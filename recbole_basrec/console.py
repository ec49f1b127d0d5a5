"""What the console shows: warnings and the lines marked for it; the log file keeps everything.

RecBole's ``init_logger`` gives the root logger a console handler and a file handler (``log/``).
After :func:`quiet_console`, RecBole's own per-epoch lines and the configuration dump go to the
file only, and the console shows one progress line per epoch (logged with ``extra=CONSOLE``).
"""
import logging

#: ``logger.info(line, extra=CONSOLE)`` puts ``line`` on the console as well as in the log file.
CONSOLE = {"console": True}


class ConsoleFilter(logging.Filter):
    """Passes warnings and records logged with ``extra=CONSOLE``."""

    def filter(self, record):
        return record.levelno >= logging.WARNING or getattr(record, "console", False)


def quiet_console(logger=None):
    """Filter the console handlers of ``logger`` (default: the root logger); idempotent."""
    for handler in (logger or logging.getLogger()).handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            if not any(isinstance(f, ConsoleFilter) for f in handler.filters):
                handler.addFilter(ConsoleFilter())


class Heartbeat:
    """A plain progress line at least every ``every`` seconds inside a long loop (a training epoch,
    an evaluation): what runs, how far it is, and the time left estimated from the pace so far."""

    def __init__(self, say, label, total, every=30.0, clock=None):
        import time

        self._clock = clock or time.perf_counter
        self.say, self.label, self.total, self.every = say, label, max(int(total), 1), every
        self.start = self.last = self._clock()
        self.done = 0

    def pulse(self):
        """Inside one long step: a line when ``every`` seconds passed without one."""
        now = self._clock()
        if now - self.last >= self.every:
            self.last = now
            self.say(f"{self.label}: batch {self.done + 1}/{self.total} in progress, {now - self.start:.0f} s so far")

    def tick(self):
        self.done += 1
        now = self._clock()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.start
        left = (self.total - self.done) * elapsed / self.done
        self.say(f"{self.label}: batch {self.done}/{self.total}, {elapsed:.0f} s so far, "
                 f"about {left:.0f} s left (estimated from the pace so far)")
