import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pinterest_capi', '0005_api_keys'),
    ]

    operations = [
        migrations.AddField(
            model_name='adaccount',
            name='tag_id',
            field=models.CharField(blank=True, help_text='The id of this ad account\'s Pinterest Tag (digits), rendered by the {% pinterest_tag_base %} template tag. Verify connection fills it in when Pinterest lists one Tag.', max_length=32, validators=[django.core.validators.RegexValidator('^\\d{1,32}$', 'A Pinterest Tag id is digits only.', code='invalid_tag_id')], verbose_name='Pinterest Tag id'),
        ),
    ]
