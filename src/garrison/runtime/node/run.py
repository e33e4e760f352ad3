"""The sensor wired to the rule engine and the alert aggregator: what ``garrison runtime sensor`` runs.

Every node event is evaluated as it arrives; matches are folded into alerts (the same rule on the same
entities within ``window`` seconds is one alert with a count) and an alert is handed to ``on_alert`` when
its window closes, or at the end (:meth:`SensorRun.stop`, Ctrl-C). Nothing here prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from garrison.model.runtime import Alert
from garrison.runtime.alerts import AlertAggregator
from garrison.runtime.engine import RuleSet
from garrison.runtime.node.sensor import Sensor, SensorConfig, SensorStats

#: The sensor's default de-duplication window, seconds: shorter than the audit log's, because an alert
#: is only written when its window closes.
SENSOR_WINDOW = 10.0


@dataclass
class RunStats:
    events: int = 0
    matches: int = 0
    alerts: int = 0
    sensor: SensorStats = field(default_factory=SensorStats)

    def summary(self) -> str:
        return f"{self.events} node events, {self.matches} matches in {self.alerts} alerts; {self.sensor.summary()}"


@dataclass
class SensorRun:
    """``start()``, then ``wait()`` until ``stop()`` (from a signal handler or another thread)."""

    ruleset: RuleSet
    on_alert: Callable[[Alert], None]
    config: SensorConfig = field(default_factory=SensorConfig)
    window: float = SENSOR_WINDOW
    stats: RunStats = field(default_factory=RunStats)
    _sensor: Sensor | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _error: list[BaseException] = field(default_factory=list)

    def start(self) -> None:
        """Start the sensor (raises SensorError: not root, no connector) and the evaluation thread."""
        self._sensor = Sensor(self.config)
        self._sensor.start()
        threading.Thread(target=self._loop, name="garrison-sensor", daemon=True).start()

    def _loop(self) -> None:
        assert self._sensor is not None
        agg = AlertAggregator(window=self.window)
        next_expire = time.monotonic() + 1.0
        try:
            for ev in self._sensor.events():
                self.stats.events += 1
                for m in self.ruleset.evaluate(ev):
                    self.stats.matches += 1
                    closed = agg.add(m)
                    if closed is not None:
                        self._emit(closed)
                now = time.monotonic()
                if now >= next_expire:
                    for a in agg.expire(time.time_ns()):
                        self._emit(a)
                    next_expire = now + 1.0
        except BaseException as exc:  # surfaced by wait()
            self._error.append(exc)
        finally:
            for a in agg.flush():
                self._emit(a)
            self._done.set()

    def _emit(self, a: Alert) -> None:
        self.stats.alerts += 1
        self.on_alert(a)

    def stop(self) -> None:
        """Ask the sensor to end; :meth:`wait` returns once the last alerts are out."""
        if self._sensor is not None:
            self._sensor.interrupt()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended (True) or ``timeout`` passed (False); re-raises a failure."""
        ended = self._done.wait(timeout)
        if ended and self._sensor is not None:
            self._sensor.stop()
            self.stats.sensor = self._sensor.stats
        if self._error:
            raise self._error[0]
        return ended
