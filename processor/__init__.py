"""Save payment methods with Stripe, charge them off-session, and win failed payments back."""
