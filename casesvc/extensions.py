"""The Flask extensions, created unbound and initialised in create_app()."""
from typing import TYPE_CHECKING, ClassVar

from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase

from casesvc.errors import ProblemApi


class Base(DeclarativeBase):
    if TYPE_CHECKING:
        # every model is mapped to a table (no model maps a join or a select), so its
        # __table__ has insert(), update() and delete()
        __table__: ClassVar[Table]


db = SQLAlchemy(model_class=Base)
# What the models derive from: db.Model, which Flask-SQLAlchemy makes from Base at run time; the
# type checker cannot follow that, and sees Base (with its typed Mapped[] columns) instead.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
jwt = JWTManager()
api = ProblemApi()
