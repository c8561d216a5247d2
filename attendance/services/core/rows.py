"""Keeping a caller's model instance true to the row a service changed."""

from django.db.models import Model


def keep_in_step(instance: Model, current: Model) -> None:
    """Give `instance` the field values (and cached relations) of `current`, the same row as
    a service locked and saved it, without another query: callers hold on to the object they
    passed in, and must not go on with what it said before the service ran."""
    for field in instance._meta.concrete_fields:
        setattr(instance, field.attname, getattr(current, field.attname))
    instance._state.adding = current._state.adding
    instance._state.db = current._state.db
    instance._state.fields_cache = dict(current._state.fields_cache)
