"""Africa's Talking SMS: the thin client, the wire formats of its callbacks, segment counting
and the local simulator. No models here (MPESA_CRM_IMPLEMENTATION.md, "SMS")."""
