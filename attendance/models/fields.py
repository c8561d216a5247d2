from django.core.exceptions import ValidationError
from django.db import models

from attendance.phones import normalise_phone


class KenyanPhoneField(models.CharField):
    """Stores a Kenyan mobile number in its canonical `2547XXXXXXXX` form.

    Forms and admin accept any common spelling; lookups with a spelling that normalises
    find the stored value too.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 12)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 12:
            del kwargs["max_length"]
        return name, path, args, kwargs

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        return normalise_phone(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in self.empty_values:
            return value
        try:
            return normalise_phone(value)
        except ValidationError:
            return value

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if value not in self.empty_values:
            value = normalise_phone(value)
            setattr(model_instance, self.attname, value)
        return value
