"""The command/answer state machine of a C37.118.2 client (sans-IO, time passed in).

IEEE C37.118.2-2011 clause 7 (data communication): a client asks for a configuration
(CFG-2 or CFG-3), then sends TURN_ON; the PMU answers a SEND_CFG with a configuration
frame and a TURN_ON with data frames. Nothing acknowledges a command otherwise, so a
command with no answer is sent again after ``timeout_ns``. Some PMUs drop a command that
arrives right after another, so consecutive commands are ``gap_ns`` apart.

The async shell feeds what it reads (``on_config``, ``on_data``, ``on_unknown_config``)
and calls ``poll(now)`` at ``next_deadline()``; ``poll`` returns the commands to send and
whether the stream just went quiet.
"""

from __future__ import annotations

__all__ = ["Session", "SessionSettings"]

from collections import deque
from dataclasses import dataclass

from adapters.c37118.constants import Command

_ANSWERED_BY_CONFIG = (Command.SEND_CFG1, Command.SEND_CFG2, Command.SEND_CFG3)
CFG3_TRIES = 3


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """``config_command`` SEND_CFG2 or SEND_CFG3; ``quiet_periods`` reporting periods
    without data before the stream counts as quiet; ``spontaneous``: never command."""

    config_command: Command = Command.SEND_CFG2
    timeout_ns: int = 2_000_000_000
    gap_ns: int = 100_000_000
    quiet_periods: float = 10.0
    spontaneous: bool = False


@dataclass(frozen=True, slots=True)
class PollResult:
    commands: tuple[Command, ...] = ()
    went_quiet: bool = False


class Session:
    """Which command to send when, which answers are awaited, and whether data flows."""

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.retries = 0
        self.commands_sent = 0
        self._queue: deque[Command] = deque()
        self._pending: Command | None = None
        self._pending_since = 0
        self._last_sent: int | None = None
        self._have_config = False
        self._streaming = False
        self._period_ns = 0
        self._last_data = 0
        self._quiet = False
        self._cfg_bit = False
        self._config_due_since: int | None = None
        # SEND_CFG2 after CFG3_TRIES unanswered SEND_CFG3 before any config (a PMU that
        # does not know CFG-3 ignores the command; clause 6.5 leaves it undefined)
        self.config_command = settings.config_command
        self._cfg3_unanswered = 0

    # -- inputs ---------------------------------------------------------------------------
    def start(self, now_ns: int) -> None:
        """A new connection: nothing is known about the peer's state."""
        self._queue.clear()
        self._pending = None
        self._streaming = False
        self._last_data = now_ns
        self._quiet = False
        self._cfg_bit = False
        self._config_due_since = None
        self._want(self.config_command)

    def on_config(self, rate_hz: float, now_ns: int) -> None:
        """A configuration frame arrived (asked for or not)."""
        self._have_config = True
        self._config_due_since = None
        if rate_hz > 0:
            self._period_ns = round(1e9 / rate_hz)
        if self._pending in _ANSWERED_BY_CONFIG:
            self._pending = None
        self._queue = deque(c for c in self._queue if c not in _ANSWERED_BY_CONFIG)
        if not self._streaming:
            self._want(Command.TURN_ON)

    def on_data(self, config_changed: bool, now_ns: int) -> bool:
        """A decodable data frame arrived; ``config_changed`` is STAT bit 10 of any PMU.
        Returns True when the stream resumes after being quiet."""
        self._streaming = True
        self._last_data = now_ns
        if self._pending == Command.TURN_ON:
            self._pending = None
        self._queue = deque(c for c in self._queue if c != Command.TURN_ON)
        # STAT bit 10 (Table 7) is set for a minute. In C37.118-2005 it rises when the
        # configuration has changed; in C37.118.2-2011 it rises a minute ahead and falls
        # "when change effected". Ask on both edges: the config a rise fetches may still
        # be the old one, the one a fall fetches is the new one.
        if config_changed != self._cfg_bit:
            self._want(self.config_command)
            if not self.settings.spontaneous:
                self._config_due_since = now_ns
        self._cfg_bit = config_changed
        resumed, self._quiet = self._quiet, False
        return resumed

    def on_unknown_config(self, now_ns: int) -> None:
        """Data arrived that no known configuration describes: ask for the config."""
        self._last_data = now_ns
        self._want(self.config_command)

    # -- outputs --------------------------------------------------------------------------
    def poll(self, now_ns: int) -> PollResult:
        """Commands due at ``now_ns`` (at most one) and the quiet transition."""
        went_quiet = False
        limit = self._quiet_limit_ns()
        if limit and not self._quiet and self._streaming and now_ns - self._last_data >= limit:
            self._quiet = went_quiet = True
            # A PMU that restarted forgot our TURN_ON; asking again is harmless otherwise.
            self._want(Command.TURN_ON)
        cmds: tuple[Command, ...] = ()
        if not self.settings.spontaneous and self._gap_ok(now_ns):
            timeout = self.settings.timeout_ns
            if self._pending is not None and now_ns - self._pending_since >= timeout:
                self.retries += 1
                if self._pending == Command.SEND_CFG3 and not self._have_config:
                    self._cfg3_unanswered += 1
                    if self._cfg3_unanswered >= CFG3_TRIES:
                        # A 2005 PMU, or a 2011 one without CFG-3: fall back to CFG-2.
                        self.config_command = self._pending = Command.SEND_CFG2
                cmds = (self._pending,)
                self._pending_since = now_ns
            elif self._pending is None and self._queue:
                self._pending = self._queue.popleft()
                self._pending_since = now_ns
                cmds = (self._pending,)
        if cmds:
            self._last_sent = now_ns
            self.commands_sent += 1
        return PollResult(cmds, went_quiet)

    def next_deadline(self) -> int | None:
        """The monotonic time at which ``poll`` has something to do, if any."""
        times: list[int] = []
        if not self.settings.spontaneous:
            gap_end = (self._last_sent or 0) + self.settings.gap_ns
            if self._pending is not None:
                times.append(max(self._pending_since + self.settings.timeout_ns, gap_end))
            elif self._queue:
                times.append(gap_end)
        limit = self._quiet_limit_ns()
        if limit and self._streaming and not self._quiet:
            times.append(self._last_data + limit)
        return min(times) if times else None

    @property
    def quiet(self) -> bool:
        return self._quiet

    @property
    def pending(self) -> Command | None:
        return self._pending

    def config_due(self, now_ns: int) -> bool:
        """STAT bit 10 rose or fell and no configuration frame has come since, for at
        most one command timeout: the data frames of this moment may be laid out by a
        config the client does not have yet (2005: the change came with the rise; 2011:
        with the fall)."""
        since = self._config_due_since
        return since is not None and now_ns - since < self.settings.timeout_ns

    # -- helpers --------------------------------------------------------------------------
    def _want(self, cmd: Command) -> None:
        if cmd in _ANSWERED_BY_CONFIG:
            cmd = self.config_command
        if self.settings.spontaneous or cmd == self._pending or cmd in self._queue:
            return
        self._queue.append(cmd)

    def _gap_ok(self, now_ns: int) -> bool:
        return self._last_sent is None or now_ns - self._last_sent >= self.settings.gap_ns

    def _quiet_limit_ns(self) -> int:
        return round(self._period_ns * self.settings.quiet_periods) if self._period_ns else 0
