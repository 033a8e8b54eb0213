"""``/api/v1/notifications`` (read; every signed-in user) and ``/api/v1/webhooks`` (manage; admins:
the endpoints hold secrets).

Keys are not users: a key lists the tenant-wide notifications; a browser session lists what that
user sees in the inbox, with its read state.
"""

from __future__ import annotations

from rest_framework import generics, serializers

from alerts.models import WebhookEndpoint
from alerts.services.settings import webhook_secret
from alerts.services.webhook_http import WebhookRefused, webhook_url_check
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.accounts.models import ApiKey
from notifications import selectors as inbox_selectors
from notifications.models import Notification


class NotificationListApi(generics.ListAPIView):
    """``GET /api/v1/notifications``: newest first, 50 a page (scope ``read``)."""

    class NotificationSerializer(serializers.ModelSerializer):
        read_at = serializers.DateTimeField(read_only=True, allow_null=True, default=None)

        class Meta:
            model = Notification
            fields = ["id", "kind", "severity", "title", "body", "url", "created_at", "read_at"]

    access = ApiAccess(read=Access(area="signed_in", scope="read"))
    serializer_class = NotificationSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if isinstance(self.request.auth, ApiKey):
            return Notification.objects.filter(user__isnull=True).order_by("-created_at", "-id")
        return inbox_selectors.visible_with_read_state(self.request.user)


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "enabled", "secret", "created_at"]
        read_only_fields = ["id", "secret", "created_at"]

    def validate_url(self, url: str) -> str:
        try:
            webhook_url_check(url)
        except WebhookRefused as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return url

    def create(self, validated_data):  # type: ignore[no-untyped-def]
        return WebhookEndpoint.objects.create(secret=webhook_secret(), **validated_data)


# Reading needs as much as writing: the answers hold the signing secrets.
WEBHOOK_ACCESS = ApiAccess(
    read=Access(area="admin", scope="manage"), write=Access(area="admin", scope="manage")
)


class WebhookListApi(generics.ListCreateAPIView):
    """``GET/POST /api/v1/webhooks`` (scope ``manage``); the secret signs every delivery."""

    access = WEBHOOK_ACCESS
    serializer_class = WebhookSerializer
    queryset = WebhookEndpoint.objects.order_by("name", "pk")


class WebhookDetailApi(generics.RetrieveUpdateDestroyAPIView):
    """``GET/PATCH/PUT/DELETE /api/v1/webhooks/{id}`` (scope ``manage``)."""

    access = WEBHOOK_ACCESS
    serializer_class = WebhookSerializer
    queryset = WebhookEndpoint.objects.all()
