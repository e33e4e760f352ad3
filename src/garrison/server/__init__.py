"""garrison's server: a FastAPI app (:func:`.app.create_app`) whose routers call
:mod:`garrison.services.server` only; authentication and roles are dependencies (:mod:`.auth`)."""
