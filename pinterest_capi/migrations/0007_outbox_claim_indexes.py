# Claim walks a partial index of pending rows (and one of in-flight leases); the flush
# rewrites every row twice, so indexes no query needs are dropped (the FK index on account,
# the pattern-ops copy of order_id).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pinterest_capi', '0006_adaccount_tag_id'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='outboxevent',
            name='pcapi_event_due_idx',
        ),
        migrations.RemoveIndex(
            model_name='outboxevent',
            name='pcapi_event_lease_idx',
        ),
        migrations.AlterField(
            model_name='outboxevent',
            name='account',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='pinterest_capi.adaccount', verbose_name='ad account'),
        ),
        migrations.AlterField(
            model_name='outboxevent',
            name='order_id',
            field=models.CharField(blank=True, max_length=255, verbose_name='order id'),
        ),
        migrations.AddIndex(
            model_name='outboxevent',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at', 'id'], name='pcapi_event_pending_due_idx'),
        ),
        migrations.AddIndex(
            model_name='outboxevent',
            index=models.Index(condition=models.Q(('status', 'in_flight')), fields=['lease_expires_at'], name='pcapi_event_lease_idx'),
        ),
        migrations.AddIndex(
            model_name='outboxevent',
            index=models.Index(fields=['order_id'], name='pcapi_event_order_id_idx'),
        ),
    ]
