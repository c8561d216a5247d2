from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save
from django.dispatch import receiver

from .middleware import SESSION_LANGUAGE
from .models import Profile, django_language


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="profile_for_new_user")
def create_profile_for_new_user(sender, instance, created, raw=False, **kwargs):
    # Every user has a profile, so views and services never handle a missing one.
    if created and not raw:
        Profile.objects.get_or_create(user=instance)


@receiver(user_logged_in, dispatch_uid="member_language_at_login")
def member_language_at_login(sender, request, user, **kwargs):
    # The pages after login speak the member's language (MemberLanguageMiddleware reads it
    # from the session, so no page pays a query for it).
    if request is None or not hasattr(request, "session"):
        return
    try:
        language = user.profile.language
    except Profile.DoesNotExist:
        return
    request.session[SESSION_LANGUAGE] = django_language(language)
