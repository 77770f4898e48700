"""The Graph call path: msgraph-sdk builds and sends requests (its RetryHandler off), we read responses."""
