"""The Flask extensions, created unbound and initialised in create_app()."""

from typing import TYPE_CHECKING, Any, ClassVar

from flask import current_app, has_request_context, json, request
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as _FlaskSession
from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase

from casesvc.errors import ProblemApi
from casesvc.openapi_doc import ConventionsPlugin, SchemaPlugin, servers


class Base(DeclarativeBase):
    if TYPE_CHECKING:
        # every model is mapped to a table (no model maps a join or a select), so its
        # __table__ has insert(), update() and delete()
        __table__: ClassVar[Table]


class _Api(ProblemApi):
    """The Api with the document's conventions (casesvc/openapi_doc.py): its plugin reads the
    views of the app being set up."""

    def init_app(self, app, *, spec_kwargs=None):
        _conventions.app = app
        super().init_app(app, spec_kwargs=spec_kwargs)
        # flask-smorest's page-number pagination, which this API does not use (its pages are keysets)
        self.spec.components.schemas.pop("PaginationMetadata", None)

    def _openapi_json(self):
        """GET /api/v1/openapi.json, its `servers` the answering app's: this one Api serves every
        app a process makes (the tests make many), and its spec was built for the last of them."""
        document = dict(self.spec.to_dict(), servers=servers(current_app.config["CASESVC"].public_url))
        return current_app.response_class(json.dumps(document, indent=2, sort_keys=False), mimetype="application/json")


# where a read's own connection waits for its statements (casesvc/common/connection.py)
READ_CONNECTION = "casesvc.read_connection"


class _Session(_FlaskSession):
    """Flask-SQLAlchemy's session, on the read's own connection when the request has one: what
    a read asks through the ORM goes where its other statements go, in autocommit."""

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None, **kwargs: Any) -> Any:
        if bind is None and has_request_context():
            read = request.environ.get(READ_CONNECTION)
            if read is not None:
                return read
        return super().get_bind(mapper, clause, bind, **kwargs)


_conventions = ConventionsPlugin()
db = SQLAlchemy(model_class=Base, session_options={"class_": _Session})
# What the models derive from: db.Model, which Flask-SQLAlchemy makes from Base at run time; the
# type checker cannot follow that, and sees Base (with its typed Mapped[] columns) instead.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
jwt = JWTManager()
api = _Api(spec_kwargs={"marshmallow_plugin": SchemaPlugin(), "extra_plugins": [_conventions]})
