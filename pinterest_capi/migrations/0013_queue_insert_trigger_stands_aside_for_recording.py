# PostgreSQL: the recording hot path writes its rows' queue entries in its own statement
# (pinterest_capi.queue_triggers.insert_queueing_itself) and the insert trigger's WHEN holds it
# off while that statement runs: the trigger is PL/pgSQL, whose library a new database session
# loads on the first call (about a millisecond for each request of a shop that opens a
# connection per request).  The triggers are installed again with that WHEN (SQLite: unchanged).

from django.db import migrations

from pinterest_capi import queue_triggers


class Migration(migrations.Migration):
    dependencies = [
        ("pinterest_capi", "0012_outbox_drop_unused_queued_column"),
    ]

    operations = [
        migrations.RunPython(
            queue_triggers.reinstall, queue_triggers.reinstall, elidable=False
        ),
    ]
