"""The domain of winning a payment back: cases, the notification ledger, links and reminders.

It never imports `notifier` (delivery) or `web`.
"""
