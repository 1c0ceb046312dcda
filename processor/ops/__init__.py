"""What dashboards and operators read: the ops report, Prometheus metrics, retention."""
