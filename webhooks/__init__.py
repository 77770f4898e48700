"""Graph change notifications: the ASGI receiver (handshake, clientState, lifecycle, rich data)
and the subscription manager (create, renew, recreate, delete) with its Redis registry.

    app.py          thin ASGI adapter: routes, body limit, status codes
    receiver.py     what a delivery becomes: checks per item, one pipelined enqueue
    validation.py   handshake token, content type, JSON body
    client_state.py clientState secret and constant-time check
    tokens.py       validationTokens (JWT) of rich notifications
    crypto.py       encryptedContent: dataSignature, RSA-OAEP data key, AES-CBC
    registry.py     subscription records in Redis
    manager.py      Graph /subscriptions calls; renewal.py the cron that renews
    lifetimes.py    the documented maximum lifetime per resource
    routing.py      which job a notification's resource becomes (inbound or sync)
    counters.py     drop/reject counters, flushed to Redis
"""
