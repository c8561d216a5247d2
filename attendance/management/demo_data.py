"""What the demo is made of: its people, events and pay rates, and when "today's" event
starts whatever the hour `make run` is typed (seed_demo builds it through the services)."""

from datetime import datetime, timedelta

from django.utils import timezone

from attendance.models import Department

DEMO_PASSWORD = "soundfusion-demo"  # noqa: S105  (printed for the demo; never used in production)

CREW = [
    ("wanjiku", "Wanjiku", "Kamau", "0712345001", Department.AUDIO, "FOH engineer"),
    ("otieno", "Brian", "Otieno", "0722345002", Department.AUDIO, "Monitor engineer"),
    ("achieng", "Achieng", "Odhiambo", "0733345003", Department.LIGHTING, "Lighting design"),
    ("kiprop", "Kevin", "Kiprop", "0110345004", Department.STAGING, "Rigging, stagehand"),
    ("mwangi", "Peter", "Mwangi", "0745345005", Department.LOGISTICS, "Driver (BCE licence)"),
    ("njeri", "Njeri", "Wambui", "0757345006", Department.DJ, "DJ, MC"),
    ("mutua", "James", "Mutua", "0768345007", Department.STAGING, "Stagehand"),
    ("chebet", "Faith", "Chebet", "0111345008", Department.LIGHTING, "Lighting tech"),
    ("omondi", "Collins", "Omondi", "0791345009", Department.AUDIO, "Audio tech, RF"),
    ("akinyi", "Mercy", "Akinyi", "0708345010", Department.LOGISTICS, "Driver, stores"),
]

EVENTS = [
    # name, client, venue, days from today, start hour, hours, status
    (
        "Safari Sevens hospitality",
        "Kenya Rugby Union",
        "RFUEA Grounds, Ngong Road",
        -21,
        10,
        9,
        "completed",
    ),
    (
        "Corporate gala dinner",
        "Equity Group",
        "Villa Rosa Kempinski, Westlands",
        -7,
        17,
        6,
        "completed",
    ),
    ("Sunday service live sound", "CITAM Valley Road", "CITAM Valley Road", -2, 8, 5, "completed"),
    ("Product launch", "Safaricom PLC", "KICC Tsavo Ballroom", 0, 18, 5, "confirmed"),
    ("Wedding reception", "Kariuki family", "Windsor Golf Hotel, Ridgeways", 3, 14, 8, "confirmed"),
    ("Blankets & Wine", "Blankets & Wine", "Laureate Gardens, Kasarani", 10, 12, 10, "planned"),
    ("Koroga Festival", "Capital FM", "Two Rivers Mall Grounds", 24, 11, 11, "planned"),
]


def today_event_start(now: datetime | None = None) -> datetime:
    """When the demo's "today" event starts, whatever the hour `make run` is typed: its call
    (two hours before) 30 to 60 minutes away, so check-in is open or about to be; late at night
    or before dawn, the next 18:00 more than three hours away (a real evening show)."""
    now = timezone.localtime(now)
    call = (now + timedelta(minutes=30)).replace(second=0, microsecond=0)
    call += timedelta(minutes=(30 - call.minute % 30) % 30)
    if 8 <= call.hour <= 20:
        return call + timedelta(hours=2)
    evening = now.replace(hour=18, minute=0, second=0, microsecond=0)
    while evening < now + timedelta(hours=3):
        evening += timedelta(days=1)
    return evening


# The job each demo member is usually booked for (role names from migration 0005).
ROLE_OF = {
    "wanjiku": "FOH engineer",
    "otieno": "Monitor engineer",
    "achieng": "Lighting technician",
    "kiprop": "Stagehand",
    "mwangi": "Driver",
    "njeri": "DJ",
    "mutua": "Stagehand",
    "chebet": "Lighting technician",
    "omondi": "FOH engineer",
    "akinyi": "Driver",
}


# Pay per role (KES): day rate, hourly rate, minimum call hours, overtime after hours.
DEMO_RATES = {
    "FOH engineer": ("4000", "500", "6", "10"),
    "Monitor engineer": ("3500", "450", "6", "10"),
    "Lighting technician": ("3000", "400", "6", "10"),
    "Stagehand": ("1500", "200", "4", "10"),
    "Driver": ("2000", "250", "6", "12"),
    "DJ": ("5000", None, "0", None),
    "Video technician": ("3000", "400", "6", "10"),
}


# How the accountant engaged three demo members: a casual employee with every number, the DJ
# as a contractor on fees, a rigger whose main job is elsewhere (secondary employment).
DEMO_STATUTORY = {
    "wanjiku": {
        "kra_pin": "A012345678Z",
        "id_number": "23456781",
        "nssf_number": "2001234567",
        "shif_number": "CR5647382910",
    },
    "njeri": {
        "kra_pin": "A098765432B",
        "classification": "contractor",
        "classification_reason": "Hired per booking with her own equipment; invoices.",
    },
    "kiprop": {
        "kra_pin": "A011122233C",
        "id_number": "30111222",
        "secondary_employment": True,
        "classification_reason": "Full-time rigger at a venue; gigs with us on weekends.",
    },
}
