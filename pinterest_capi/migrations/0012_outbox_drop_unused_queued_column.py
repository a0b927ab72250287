# The generated ``queued`` column lost its last reader in 0011 (the queue table replaced the
# partial index on it; the triggers test ``status``): every status change still computed and
# stored it.  SQLite rebuilds the table to drop the column, which drops the queue's triggers,
# so they are installed again here.

from django.db import migrations

from pinterest_capi import queue_triggers


class Migration(migrations.Migration):
    dependencies = [
        ("pinterest_capi", "0011_outbox_queue_table_delivery_hot"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="outboxevent",
            name="queued",
        ),
        migrations.RunPython(
            queue_triggers.reinstall, queue_triggers.reinstall, elidable=False
        ),
    ]
