"""``GET /info/``: MONAI Label's app info with the datastore's status, which MONAI Label's other routes do without.

MONAI Label's own ``/info/`` route calls ``app.info()``, as do its ``/infer``, ``/train`` and ``/activelearning``
routes on every call; our app leaves the costly status out of ``info()`` unless asked (``apps/awesomme/main.py``).
This route asks for it and replaces MONAI Label's, at the same path, for the same callers (its Python client,
3D Slicer's module, the viewers), narrowed to what the caller may run (``services.app_info``): the bundled viewer's
panels and Slicer's module offer nothing that is then refused.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from monailabel.interfaces.utils.app import app_instance

from awesomme.api.deps import CurrentPrincipal, DbSession
from awesomme.services import app_info as caller_info

router = APIRouter(tags=["AppService"])


@router.get("/info/", summary="The app: the models, trainers and strategies I may run, and the datastore's status")
def app_info(principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    # A plain function: FastAPI runs it on a worker thread, off the event loop.
    return caller_info.for_caller(session, principal, app_instance().info(status=True))
