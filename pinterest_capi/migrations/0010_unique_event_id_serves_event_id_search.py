# The unique (event_id, account, event_name) index, event_id first with varchar_pattern_ops on
# PostgreSQL, also serves the admin's event-id search: the separate event_id index goes, one
# index entry less for every recorded event and every delivered one.  The new index is built
# before the old constraint is dropped.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pinterest_capi', '0009_attempt_links_without_db_constraints'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='outboxevent',
            constraint=models.UniqueConstraint(fields=('event_id', 'account', 'event_name'), name='pcapi_event_unique_event_id', opclasses=['varchar_pattern_ops', 'int8_ops', 'varchar_ops']),
        ),
        migrations.RemoveConstraint(
            model_name='outboxevent',
            name='pinterest_capi_unique_account_event',
        ),
        migrations.RemoveIndex(
            model_name='outboxevent',
            name='pcapi_event_id_idx',
        ),
    ]
