"""The node sensor: processes (netlink process-events connector), files (fanotify) and connections
(sock_diag) as node events with Falco's field names.

``netlink`` (the connector) · ``procfs`` (what /proc tells) · ``capture`` (the capture process) ·
``fanotify`` · ``sockdiag`` · ``containers`` (cgroup → container, Docker API) · ``event`` (``NodeEvent``)
· ``table`` (the process table, users) · ``sensor`` (``Sensor``) · ``run`` (the sensor wired to the engine
and alerts).
See docs/runtime.md, "Node sensor".
"""
