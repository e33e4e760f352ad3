"""Lost events are counted and reported, never silent: a capture with a tiny receive buffer, stopped
(SIGSTOP, by its own pid) while a burst of processes runs, must report the overrun and the exact number
of events lost (the connector's sequence gaps), and keep working after it."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid

import pytest
from tests.runtime.test_sensor_support import need_root

from garrison.runtime.node.event import NodeEvent
from garrison.runtime.node.sensor import Sensor, SensorConfig

pytestmark = pytest.mark.slow


def test_overrun_is_counted_and_the_sensor_recovers() -> None:
    need_root()
    sensor = Sensor(SensorConfig(rcvbuf=4096, per_cpu=False, files=False, poll_s=0, realtime=False))
    sensor.start()
    seen: list[NodeEvent] = []
    t = threading.Thread(target=lambda: seen.extend(sensor.events()), daemon=True)
    t.start()
    (capture,) = sensor.capture_pids()
    try:
        os.kill(capture, signal.SIGSTOP)
        try:
            subprocess.run(["bash", "-c", "for ((i=0;i<300;i++)); do /bin/true; done"], check=True, timeout=120)
        finally:
            os.kill(capture, signal.SIGCONT)
        m = uuid.uuid4().hex[:10]
        deadline = time.monotonic() + 30
        while not any(m in e.proc.cmdline for e in list(seen)) or sensor.stats.lost == 0:
            assert time.monotonic() < deadline, f"no recovery or no loss reported: {sensor.stats.summary()}"
            subprocess.run(["sh", "-c", f"sleep 0.2; : {m}"], check=True)
    finally:
        sensor.interrupt()
        t.join(timeout=10)
        sensor.stop()
    st = sensor.stats
    assert st.overruns >= 1  # recv said ENOBUFS at least once
    assert 0 < st.lost < 300 * 3 + 100  # 300 forks, execs and exits (and the machine's own) at most
    assert f"lost {st.lost} (+{st.overruns} overruns" in st.summary()
