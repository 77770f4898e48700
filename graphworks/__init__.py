"""The composition root: the only place that picks the pieces and wires them together.

cli/            the `graphworks` command: one module per command group, heavy parts
                imported when a command runs (so `--help` loads click and little else)
wiring.py       what a worker is made of: limiter, Graph client, dead-letter store,
                job types, the renewal cron, what runs at start
demo.py         `graphworks demo`: embedded Redis + graphsim + one worker, scripted
demo_webhooks.py  the demo's second act: subscriptions, notifications, inbound, sync
embedded_redis.py a private redis-server (demo, tests, benches) that dies with its parent
"""
