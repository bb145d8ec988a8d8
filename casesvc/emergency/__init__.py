"""Emergency access, "break the glass" (CONTRACT §10; README: Privacy duties)."""
