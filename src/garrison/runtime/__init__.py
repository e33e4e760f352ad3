"""Runtime threat detection: Falco's rule language over Kubernetes audit events and node events.

``events`` (the event interface) · ``fields`` (which fields each source offers) · ``condition`` (the
condition parser) · ``loader`` (rule files, append and override) · ``compiler`` (conditions → Python) ·
``engine`` (:func:`~garrison.runtime.engine.load_rules`, :class:`~garrison.runtime.engine.RuleSet`) ·
``k8saudit`` (the audit event and its ``ka.*`` fields) · ``audit_source`` (files, stdin) · ``receiver``
(the audit webhook) · ``alerts`` (matches → de-duplicated alerts). See ``docs/runtime.md``.
"""
