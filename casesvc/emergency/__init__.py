"""Emergency access, "break the glass" (README "Emergency access"; README: Privacy duties)."""
