from django.db import migrations

# The jobs Sound Fusion staffs on nearly every event; admins can add more.
DEFAULT_ROLES = [
    ("FOH engineer", "Front-of-house mix"),
    ("Monitor engineer", "Stage monitor mix"),
    ("Lighting technician", "Lighting rig and desk"),
    ("Stagehand", "Load-in, set-up and load-out"),
    ("Driver", "Truck and crew transport"),
    ("DJ", "Music between and after acts"),
    ("Video technician", "Screens and cameras"),
]


def add_roles(apps, schema_editor):
    CrewRole = apps.get_model("attendance", "CrewRole")
    for order, (name, description) in enumerate(DEFAULT_ROLES, start=1):
        CrewRole.objects.get_or_create(
            name=name, defaults={"description": description, "sort_order": order * 10}
        )


class Migration(migrations.Migration):
    dependencies = [("attendance", "0004_crew")]

    operations = [migrations.RunPython(add_roles, migrations.RunPython.noop)]
