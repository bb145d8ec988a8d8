"""Continuity: handing over the lead of a case, and moving a case to another municipality
(README "Continuity")."""
