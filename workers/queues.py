"""Queue names and per-queue job timeouts: the one place they are defined."""

REGISTRY = "registry"  # deliveries to the city registry
SCANS = "scans"  # evidence extraction (image, QR, OCR, PDF/OFD/XML)
NOTIFY = "notify"  # e-mail and other notifications
MAINTENANCE = "maintenance"  # sweeper, reconciliation, monitors

# Listed in priority order: a worker serving several queues drains them in this order.
ALL = (REGISTRY, NOTIFY, SCANS, MAINTENANCE)

JOB_TIMEOUTS = {REGISTRY: 120, SCANS: 180, NOTIFY: 60, MAINTENANCE: 900}
