"""The customer-support bot: trained from past tickets, answers customers, hands over to humans."""

from __future__ import annotations

from apps.support.app import APP, SupportApp

__all__ = ["APP", "SupportApp"]
