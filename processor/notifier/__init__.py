"""Delivery only: the worker that claims due notifications from `processor.recovery`, renders
them (text + HTML, English and Japanese) and sends them over SMTP.

It depends on `recovery`, never the other way round, and imports nothing from `web`.
"""
