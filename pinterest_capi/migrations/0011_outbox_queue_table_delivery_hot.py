# The queue of rows to deliver becomes a narrow table of its own (QueuedEvent), kept by
# triggers, instead of a partial index on the outbox: a delivery no longer changes an indexed
# value of the wide outbox row, so PostgreSQL rewrites it in place (HOT) instead of writing a
# new entry in each of its indexes.  Per-account counts of failed rows use a partial index on
# the derived ``failed`` (the ``delivered`` column it replaces changed on every delivery).

import django.db.models.deletion
from django.db import migrations, models

from pinterest_capi import queue_triggers


def _tables(apps):
    outbox = apps.get_model("pinterest_capi", "OutboxEvent")._meta.db_table
    queue = apps.get_model("pinterest_capi", "QueuedEvent")._meta.db_table
    return outbox, queue


def create_queue_triggers(apps, schema_editor):
    """The triggers, then an entry for every row still to deliver (in flight: at lease end)."""
    outbox, queue = _tables(apps)
    queue_triggers.install(schema_editor.connection, outbox, queue)
    queue_triggers.fill(schema_editor.connection, outbox, queue)


def drop_queue_triggers(apps, schema_editor):
    queue_triggers.uninstall(schema_editor.connection, _tables(apps)[0])


class Migration(migrations.Migration):
    dependencies = [
        ("pinterest_capi", "0010_unique_event_id_serves_event_id_search"),
    ]

    operations = [
        migrations.CreateModel(
            name="QueuedEvent",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="queue_entry",
                        serialize=False,
                        to="pinterest_capi.outboxevent",
                        verbose_name="outbox event",
                    ),
                ),
                ("next_attempt_at", models.DateTimeField(verbose_name="claimable at")),
            ],
            options={
                "verbose_name": "queued event",
                "verbose_name_plural": "queued events",
            },
        ),
        migrations.RemoveIndex(
            model_name="outboxevent",
            name="pcapi_event_queued_due_idx",
        ),
        migrations.RemoveIndex(
            model_name="outboxevent",
            name="pcapi_event_undelivered_idx",
        ),
        migrations.RemoveField(
            model_name="outboxevent",
            name="delivered",
        ),
        migrations.AddField(
            model_name="outboxevent",
            name="failed",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.ExpressionWrapper(
                    models.Q(("status", "failed")), output_field=models.BooleanField()
                ),
                output_field=models.BooleanField(),
                verbose_name="failed",
            ),
        ),
        migrations.AddIndex(
            model_name="outboxevent",
            index=models.Index(
                condition=models.Q(("failed", True)),
                fields=["account", "id"],
                name="pcapi_event_failed_idx",
            ),
        ),
        migrations.AddField(
            model_name="queuedevent",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="pinterest_capi.adaccount",
                verbose_name="ad account",
            ),
        ),
        migrations.AddIndex(
            model_name="queuedevent",
            index=models.Index(fields=["next_attempt_at", "event"], name="pcapi_queue_due_idx"),
        ),
        # Last: SQLite rebuilds the outbox table for the column changes above, and a rebuilt table
        # loses its triggers.
        migrations.RunPython(create_queue_triggers, drop_queue_triggers, elidable=False),
    ]
