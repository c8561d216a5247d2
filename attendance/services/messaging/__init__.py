"""Telling people things: which channel a member takes (`channels`), the email outbox
(`email`), the SMS outbox (`sms`) and what Africa's Talking sends back (`sms_inbox`)."""
