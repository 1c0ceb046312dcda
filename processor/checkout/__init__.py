"""Saving a payment method: setup attempts and saved methods, and the rules that merge what
the confirm endpoint, webhooks and Stripe's answers say about them."""
