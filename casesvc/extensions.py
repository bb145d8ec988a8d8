"""The Flask extensions, created unbound and initialised in create_app()."""

from typing import TYPE_CHECKING, ClassVar

from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase

from casesvc.errors import ProblemApi
from casesvc.openapi_doc import ConventionsPlugin, SchemaPlugin


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


_conventions = ConventionsPlugin()
db = SQLAlchemy(model_class=Base)
# What the models derive from: db.Model, which Flask-SQLAlchemy makes from Base at run time; the
# type checker cannot follow that, and sees Base (with its typed Mapped[] columns) instead.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
jwt = JWTManager()
api = _Api(spec_kwargs={"marshmallow_plugin": SchemaPlugin(), "extra_plugins": [_conventions]})
