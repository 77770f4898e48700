"""Webhook receiver for Graph change notifications (a later issue builds it)."""
