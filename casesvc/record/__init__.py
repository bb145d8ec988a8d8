"""The youth's record for a request for access (README "The youth's record"; README: Privacy duties)."""
