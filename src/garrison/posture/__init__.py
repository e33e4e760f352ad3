"""The posture engine: inputs → resources → controls (``garrison/rules/posture/``) → findings.

Entry points: :func:`garrison.posture.engine.assess` (resources x controls → findings),
:func:`garrison.posture.inputs.load_source` (a SOURCE → resources), :func:`garrison.posture.controls.builtin_controls`.
``docs/posture.md`` documents the control format and the check language.
"""
