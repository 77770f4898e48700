"""Graph change notifications over HTTP: the ASGI receiver. What subscriptions are and what
their notifications become lives below, in worker/subscriptions/.

    app.py          thin ASGI adapter: routes, body limit, status codes
    receiver.py     what a delivery becomes: checks per item, one pipelined enqueue
    validation.py   handshake token, content type, JSON body
    tokens.py       validationTokens (JWT) of rich notifications
    batching.py     concurrent deliveries' writes share one round trip
    redis_conn.py   the receiver's Redis connection
"""
