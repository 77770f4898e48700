"""Graph subscriptions and what their notifications become, shared by the receiver (webhooks/)
and the notification processors.

    registry.py     subscription records in Redis
    client_state.py clientState secret and constant-time check
    manager.py      Graph /subscriptions calls; renewal.py the cron function that renews
    lifetimes.py    the documented maximum lifetime per resource
    crypto.py       encryptedContent: dataSignature, RSA-OAEP data key, AES-CBC
    routing.py      which job a notification's resource becomes (inbound or sync)
    jobs.py         the jobs a notification batch and a resync become
    counters.py     drop/reject counters, flushed to Redis
"""
