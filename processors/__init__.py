"""One module per job type, named for it; registry.py maps type names to model and processor.

teams_message.py  mail.py  attachment.py  inbound.py  sync.py
notification.py   notification_batch.py
parts/            what several processors share: sources, upload sessions, the mail message,
                  the mail draft, sync state and targets, the inbound message, HTML text
"""
