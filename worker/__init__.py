"""The pipeline a job goes through, and the client that puts it there.

client.py       the enqueue client (`from worker.client import GraphworksClient`)
queue.py        writing jobs the way arq reads them: priority, deferral, idempotency (lua/)
arq_adapter.py  everything that knows arq: job records, the Worker, cron jobs
runner.py       decode, validate, run the processor, classify -> policy -> retry | dead-letter
job_type.py     a job type as the runner sees it (name, model, processor)
context.py      what a processor gets besides its payload
classify.py     exception -> error class;  policy.py  the retry policy and `decide`
config_file.py  the TOML file: policies and limits
stats.py        counters, counted once per job
redrive.py      dead-lettered jobs back on the queue
deadletter/     the dead-letter store (Redis, in-process) and its entry model
graph/          the Graph call path: msgraph-sdk, auth, delegated tokens, responses, warm-up
sinks/          where inbound messages and sync changes go
subscriptions/  Graph subscriptions: registry, manager, renewal, clientState, crypto, routing
"""
