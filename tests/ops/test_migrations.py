"""The migrations are one straight line and build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from casesvc.extensions import db
from casesvc.migrations_runner import migrations_directory


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", migrations_directory())
    return ScriptDirectory.from_config(config)


def test_the_migrations_have_a_single_head():
    assert len(_script().get_heads()) == 1


def test_the_migrated_database_matches_the_models(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = [
            d
            for d in compare_metadata(context, db.metadata)
            # alembic's own bookkeeping table is not a model
            if not (d[0] == "remove_table" and d[1].name == "alembic_version")
        ]
    assert diff == []
