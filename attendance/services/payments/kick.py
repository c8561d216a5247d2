"""The STK callbacks' kick: the Redis flag of their batch task (`core/batching.py`)."""

from attendance.services.core.batching import Kick

callback_kick = Kick("mpesa:callbacks:kick")
