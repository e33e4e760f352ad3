"""Admission control: an ``AdmissionReview`` v1 in, a verdict out (:mod:`.review`), against a policy of
posture controls (:mod:`.policy`). Pure: the HTTPS webhook is ``garrison.server.admission``."""
