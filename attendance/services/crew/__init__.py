"""Event crew, from invitation to show day: assigning and answering (`assignments`), signed
answer and short links (`links`), what members are told (`notices`), standby offers and
replacements (`offers`), reminders, briefing and completion (`followup`), answers by text
(`replies`), what staffing looks like (`staffing`, `board`), availability, track record,
calendar feeds, and events themselves (`events`)."""
