from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("attendance", "0039_sms_awaiting_report_index"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [
        # The sign-in records' "logout time" filter (today, past 7 days) read every record;
        # django-axes has no index on it. Ours, on its table, as in 0035.
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS sf_axes_accesslog_logout "
            "ON axes_accesslog (logout_time)",
            reverse_sql="DROP INDEX IF EXISTS sf_axes_accesslog_logout",
        ),
    ]
