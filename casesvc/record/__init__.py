"""The youth's record for a request for access (CONTRACT §12; README: Privacy duties)."""
