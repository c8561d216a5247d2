from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Profile


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="profile_for_new_user")
def create_profile_for_new_user(sender, instance, created, raw=False, **kwargs):
    # Every user has a profile, so views and services never handle a missing one.
    if created and not raw:
        Profile.objects.get_or_create(user=instance)
