"""Use cases that wire the engines, the findings step and (later) the store: one function or service
per use case. The CLI, the Python API, the server and the workers all call these; none of them wires an
engine by hand."""
